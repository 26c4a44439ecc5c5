// The admins' "Access log" dialog: who logged in or failed to, who changed users or tokens, who
// fetched frames, snapshots, reports and exports, from which address, read from /v1/access-log.
// Loaded after the dashboard's own scripts, whose accountDialog(), answered() and clockTime() it
// uses: only an admin gets the button (the server refuses anyone else).
// The actions offered are those GET /v1/privacy says the log records: no second list here. Every
// value is set as text (a failed login's target, logged before "(unknown name)" replaced names that
// are no user's, may be whatever was typed as a user name).
(() => {
  const MARKUP = `
<dialog id="access-log-dialog" aria-labelledby="access-log-title">
  <h2 id="access-log-title" tabindex="-1">Access log</h2>
  <form id="access-log-filters" novalidate>
    <label>User <input id="access-log-user" list="access-log-users" autocomplete="off" maxlength="200"
      aria-describedby="access-log-user-why"></label>
    <datalist id="access-log-users"></datalist>
    <p id="access-log-user-why"><small>The whole name: a user, <code>token:NAME</code> or <code>cli:ACCOUNT</code>;
      empty for everyone.</small></p>
    <label>Action <select id="access-log-action"><option value="">all</option></select></label>
    <button type="submit">Show</button>
  </form>
  <p id="access-log-error" role="alert"></p>
  <p id="access-log-status" role="status"></p>
  <table id="access-log-table" role="table">
    <thead role="rowgroup"><tr role="row"><th role="columnheader">When</th><th role="columnheader">User</th>
      <th role="columnheader">Action</th><th role="columnheader">Target</th><th role="columnheader">Address</th></tr></thead>
    <tbody role="rowgroup"></tbody></table>
  <p id="access-log-unknown"><small>A failed login's target is the name tried where it is a user's; any other
    is shown as <q>(unknown name)</q>, what was typed not kept: it is often a password or a recovery code.</small></p>
  <p><button type="button" id="access-log-older" hidden>Older entries</button></p>
  <p><button type="button" id="access-log-close">Close</button></p>
</dialog>`;
  const {dialog, open, say} = accountDialog("access-log", "Access log", MARKUP);
  const $ = (id) => document.getElementById(id);
  let older = null;  // the URL of the next page of older rows, from the answer's `next`
  let reading = 0;  // the latest read's number: an earlier answer arriving after it is dropped

  // A refusal of a login, a password or a change, by its name (`login_failed`, `login_limited`,
  // `password_change_failed`, `admin_password_failed`), or of an expired API token's request
  // (`token_expired`, a revoked token's 401: it stood unmarked): in words, not by colour alone.
  const failed = (action) => /_(failed|limited)$/.test(action) || action === "token_expired";

  function row(entry) {
    const tr = document.createElement("tr");
    tr.dataset.id = entry.id;
    const values = [clockTime(entry.at * 1000), entry.user ?? "nobody logged in", null,
                    entry.target ?? "", entry.client ?? ""];
    values.forEach((value, column) => {
      const td = document.createElement("td");
      if (column === 2) {
        if (failed(entry.action)) {
          tr.classList.add("refused");
          td.append(Object.assign(document.createElement("strong"), {className: "refused-mark", textContent: "Refused"}), " ");
        }
        td.append(entry.action);
      } else {
        td.textContent = value;
      }
      tr.append(td);
    });
    return tr;
  }
  function show(entries, more) {
    $("access-log-table").tBodies[0].append(...entries.map(row));
    stackRows($("access-log-table"));  // each value after its heading on a phone
    older = more;
    $("access-log-older").hidden = !older;
  }

  // The actions the server records, and the users to suggest (tokens and commands are typed); read
  // at each opening: a user added in the Users dialog meanwhile is offered.
  async function choices() {
    const [{access_log: {records}}, {users}] = await Promise.all([answered("v1/privacy"), answered("v1/users")]);
    const select = $("access-log-action"), chosen = select.value;
    select.replaceChildren(select.options[0], ...records.map((action) =>
      Object.assign(document.createElement("option"), {value: action, textContent: action})));
    select.value = records.includes(chosen) ? chosen : "";
    $("access-log-users").replaceChildren(...users.map((user) =>
      Object.assign(document.createElement("option"), {value: user.name})));
  }

  async function load() {
    const query = new URLSearchParams({limit: "50"});
    const user = $("access-log-user").value.trim(), action = $("access-log-action").value;
    if (user) query.set("user", user);
    if (action) query.set("action", action);
    say("Reading the log…");
    const mine = ++reading;  // a filter changed twice quickly: both answers were shown, in either order
    $("access-log-table").tBodies[0].replaceChildren();
    $("access-log-older").hidden = true;
    const {entries, next} = await answered(`v1/access-log?${query}`);
    if (mine !== reading) return;
    show(entries, next);
    say(entries.length ? `${entries.length} entries, newest first${next ? "; older ones below" : ""}.`
                       : "No entry" + (user || action ? " for these filters." : "."));
  }
  const failing = (what) => (err) => {
    if (err.message !== "logged out") say(`${what} (${err.message}).`, true);
  };

  $("access-log-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load().catch(failing("The log could not be read"));
  });
  $("access-log-action").addEventListener("change", () => load().catch(failing("The log could not be read")));
  let olderRead = null;  // the page being read for "Older entries": a second click meanwhile reads nothing
  $("access-log-older").addEventListener("click", async () => {
    // Not disabled while reading: a disabled button loses the focus. Two clicks both read the
    // same `older` and appended its rows twice.
    if (olderRead === older) return;
    const button = $("access-log-older"), shown = $("access-log-table").tBodies[0].rows.length, mine = reading;
    const url = olderRead = older;
    try {
      const {entries, next} = await answered(url);
      if (mine !== reading) return;  // the filters changed meanwhile: these rows are of the list before
      show(entries, next);
      say(`${entries.length} older entries shown below the ${shown} before${next ? "" : "; that is the oldest kept"}.`);
      // The button goes with the last page: the first new row's cell keeps the reader's place (the
      // title where no row came: retention deleted them meanwhile).
      const first = $("access-log-table").tBodies[0].rows[shown]?.cells[0];
      if (button.hidden && first) { first.tabIndex = -1; first.focus(); } else if (button.hidden) $("access-log-title").focus();
    } catch (err) {
      failing("The older entries could not be read")(err);
    } finally {
      if (olderRead === url) olderRead = null;
    }
  });

  open.addEventListener("click", async () => {
    say("");
    dialog.showModal();
    $("access-log-title").focus();
    try {
      await choices();
      await load();
    } catch (err) {
      failing("The log could not be read; close and try again")(err);
    }
  });
  $("access-log-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => open.focus());  // Escape or Close
})();
