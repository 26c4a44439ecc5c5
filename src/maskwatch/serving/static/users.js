// The admins' "Users" dialog: users (add, change a role or cameras, reset a password, turn off two-step login for
// a lost phone, remove) and API tokens (create, revoke),
// through /v1/users and /v1/tokens. Loaded after the dashboard's own scripts, whose accountDialog(), clockTime(),
// answered(), checked(), codesLeft(), copyField() and stackRows() it uses: only an admin gets the button (the server refuses
// anyone else).
// Each change but a token's revocation sends the admin's own password, typed once in "Your
// password" at the top (a stolen or unattended session is not enough; the server checks it as a
// login). As the password dialog: Escape or Close closes it, every password typed (yours too) and
// the token shown are emptied then, and what went wrong is said in one line (role="alert").
(() => {
  // The most days a token may run (auth_settings.MAX_TOKEN_DAYS, the API's and the CLI's bound: a test
  // holds them equal), said and checked here in the days field.
  const MAX_DAYS = 3650;
  const MARKUP = `
<dialog id="users-dialog" aria-labelledby="users-title">
  <h2 id="users-title" tabindex="-1">Users and API tokens</h2>
  <form id="users-me" novalidate>
    <input type="text" id="users-me-name" autocomplete="username" hidden readonly>
    <label>Your password <input type="password" id="users-me-password" autocomplete="current-password"
      maxlength="1000" aria-describedby="users-me-why"></label>
    <p id="users-me-why"><small>Asked with each change (not to revoke a token), so that a session left open
      is not enough; forgotten when this dialog closes.</small></p>
  </form>
  <p id="users-error" role="alert"></p>
  <p id="users-status" role="status"></p>
  <form id="users-confirm" hidden>
    <p id="users-confirm-question"></p>
    <div class="zone-tools"><button type="submit" id="users-confirm-yes"></button>
      <button type="button" id="users-confirm-no">Keep</button></div>
  </form>
  <form id="users-reset" hidden novalidate>
    <h3 id="users-reset-title"></h3>
    <input type="text" id="users-reset-user" autocomplete="username" hidden readonly>
    <label>New password <input type="password" id="users-reset-password" autocomplete="new-password" required
      aria-describedby="users-rule"></label>
    <label>New password again <input type="password" id="users-reset-again" autocomplete="new-password" required></label>
    <p><small>Their sessions end: they log in again with it.</small></p>
    <div class="zone-tools"><button type="submit">Set password</button>
      <button type="button" id="users-reset-cancel">Cancel</button></div>
  </form>
  <form id="users-edit" novalidate hidden>
    <h3 id="users-edit-title"></h3>
    <label>Role <select id="users-edit-role"><option value="viewer">viewer</option><option value="admin">admin</option></select></label>
    <fieldset id="users-edit-cameras" hidden><legend>Cameras the viewer sees (none ticked: every camera)</legend></fieldset>
    <p><small>Their password and sessions stay; their next request has the new role and cameras.</small></p>
    <div class="zone-tools"><button type="submit">Save</button>
      <button type="button" id="users-edit-cancel">Cancel</button></div>
  </form>
  <h3>Users</h3>
  <div class="scroll" role="region" aria-label="users">
    <table id="users-table"><thead><tr><th>Name</th><th>Role</th><th>Cameras</th><th>Two-step login</th><th><span class="sr-only">Changes</span></th></tr></thead>
    <tbody></tbody></table></div>
  <form id="users-add" novalidate>
    <h3>Add a user</h3>
    <label>Name <input id="users-add-name" autocomplete="username" maxlength="64" required></label>
    <label>Role <select id="users-add-role"><option value="viewer">viewer</option><option value="admin">admin</option></select></label>
    <fieldset id="users-add-cameras" hidden><legend>Cameras the viewer sees (none ticked: every camera)</legend></fieldset>
    <label>Password <input type="password" id="users-add-password" autocomplete="new-password" required
      aria-describedby="users-rule"></label>
    <label>Password again <input type="password" id="users-add-again" autocomplete="new-password" required></label>
    <p id="users-rule"><small>At least 10 characters, not the user name, not a common password.</small></p>
    <button type="submit">Add user</button>
  </form>
  <h3>API tokens</h3>
  <div class="scroll" role="region" aria-label="API tokens">
    <table id="tokens-table"><thead><tr><th>Name</th><th>Scope</th><th>Cameras</th><th>Owner</th><th>Made</th><th>Last used</th><th>Expires</th><th><span class="sr-only">Changes</span></th></tr></thead>
    <tbody></tbody></table></div>
  <div id="tokens-secret" hidden>
    <p><label for="tokens-secret-value">Token <b id="tokens-secret-name"></b>: shown this once, store it now</label></p>
    <input id="tokens-secret-value" autocomplete="off" readonly>
    <div class="zone-tools"><button type="button" id="tokens-copy">Copy</button><span id="tokens-copied" role="status"></span></div>
  </div>
  <form id="tokens-add" novalidate>
    <h3>Create a token</h3>
    <label>Name <input id="tokens-add-name" autocomplete="off" maxlength="58" required placeholder="prometheus"></label>
    <label>Scope <select id="tokens-add-scope"><option value="read">read (GET only, as a viewer)</option>
      <option value="full">full (as an admin, but no users or tokens)</option></select></label>
    <fieldset id="tokens-add-cameras" hidden><legend>Cameras the read token sees (none ticked: every camera)</legend></fieldset>
    <label>Expires <select id="tokens-add-expires" aria-describedby="tokens-add-why">
      <option value="30">in 30 days</option><option value="90" selected>in 90 days</option>
      <option value="365">in 365 days</option><option value="days">in a number of days</option>
      <option value="never">never</option></select></label>
    <label id="tokens-add-days-field" hidden>Days until it stops working (1-${MAX_DAYS}) <input type="number"
      id="tokens-add-days" min="1" max="${MAX_DAYS}" step="1" autocomplete="off" required aria-describedby="tokens-add-why"></label>
    <p id="tokens-add-why"><small>Past it, the token is refused as a revoked one. A person's script or a
      one-off job: the time it is needed. Never: a machine kept for good (Prometheus), revoked when it goes.</small></p>
    <button type="submit">Create token</button>
  </form>
  <p><button type="button" id="users-close">Close</button></p>
</dialog>`;
  const {dialog, open, say} = accountDialog("users", "Users", MARKUP);
  const $ = (id) => document.getElementById(id);
  let me = null, confirming = null;  // confirming: what the confirm form's "yes" does
  let siteCameras = [], editing = null;  // the cameras a viewer's list may name; the user being edited
  let inFile = null;  // the ids of the site's file (GET /v1/users' in_file; null without a site)
  const NOT_IN_FILE = " (not in the site's file)";
  const gone = (id) => inFile !== null && !inFile.includes(id);  // renamed or removed in the site's file

  // The admin's own password for a change, or an Error that sends them to the field.
  function yours() {
    const password = $("users-me-password").value;
    if (password) return password;
    throw Object.assign(new Error("type your own password in \"Your password\" at the top first"),
                        {field: $("users-me-password")});  // said about that field, focused (change())
  }
  // The server's refusal of a new password (passwords.check_strength's words: "the password needs
  // ...", "... must not be the user name", "... is one of the 30,000 most common passwords ...", and
  // a reset to the user's current one, "the new password is the current one ...") said about its
  // `field`, as Change password marks its own: it stood at the dialog's top, tied to no field. The
  // server's other 400s (a name, a camera) are not about it.
  const aboutPassword = (err, field) => {
    if (err.status === 400 && /^the (new )?password /.test(err.message)) err.field = field;
    return err;
  };
  async function send(url, method, body) {
    const options = {method, headers: {"Content-Type": "application/json"}};
    if (body !== undefined) options.body = JSON.stringify(body);
    return answered(url, options);
  }
  // A change (`action` does it and tidies its form): said done, or why not ("logged out": the page
  // is going to the login page); then the lists read again (a list that cannot be read is said as
  // such, not as the change failing).
  async function change(what, action) {
    say("");
    try {
      say(await action());
    } catch (err) {
      if (err.message !== "logged out") say(`${what}: ${err.message}.`, true, err.field);
      return;
    }
    try {
      await load();
    } catch (err) {
      if (err.message !== "logged out") say(`Done, but the lists could not be read again (${err.message}).`, true);
    }
  }

  const cell = (text) => Object.assign(document.createElement("td"), {textContent: text});
  function rowButton(text, label, onClick) {
    const button = Object.assign(document.createElement("button"), {type: "button", textContent: text});
    button.setAttribute("aria-label", label);
    button.addEventListener("click", onClick);
    return button;
  }
  function noToken() {  // built, never innerHTML: no text of this dialog is read as markup
    const row = document.createElement("tr"), only = cell("No API token.");
    only.colSpan = 8;  // every column, the buttons' too (one short left a cell missing from the row)
    row.append(only);
    return row;
  }
  const when = (seconds) => seconds ? clockTime(seconds * 1000) : "never";  // the page's clock
  // A token's expiry as `tokens list` says it: never, the time, or "expired" and the time once past;
  // one that ends within SOON_DAYS says how soon, in words (a Prometheus token made here with the
  // 90 days chosen stopped with no word before; the server's log says those within 7 days daily).
  const SOON_DAYS = 14;
  function expiry(seconds) {
    const left = seconds === null ? Infinity : seconds * 1000 - Date.now();
    if (left <= 0) return `expired ${when(seconds)}`;
    if (left > SOON_DAYS * 86400000) return when(seconds);
    const days = Math.round(left / 86400000), hours = Math.round(left / 3600000);  // as the server's log rounds
    const within = left >= 86400000 ? `${days} day${days > 1 ? "s" : ""}`
      : left >= 3600000 ? `${hours} hour${hours > 1 ? "s" : ""}` : "under an hour";
    return `${when(seconds)} (ends in ${within}: make its successor)`;
  }
  // What else a removal or a demotion takes: the API tokens the user owns (a site token is nobody's).
  // A Map: a user named constructor or __proto__ read an object's own property.
  let owned = new Map();
  const alsoTokens = (name) => owned.has(name) ?
    ` Their ${owned.get(name) > 1 ? `${owned.get(name)} API tokens` : "API token"} will be revoked.` : "";
  const stillTokens = (name) => owned.has(name) ?  // two-step login off: a token has no login, and keeps working
    ` Their ${owned.get(name) > 1 ? `${owned.get(name)} API tokens keep` : "API token keeps"} working (a token has no login).` : "";
  const revokedToo = (names) => names && names.length ?  // as the server's revoked_words
    ` ${names.length} API token${names.length > 1 ? "s" : ""} of theirs revoked (${names.join(", ")}).` : "";

  async function load() {
    const [{users, cameras, two_step_kept: coveredNames, in_file: fileIds}, {tokens}] = await Promise.all([checked("v1/users"), checked("v1/tokens")]);
    inFile = fileIds ?? null;
    // A camera renamed or removed in the site's file: the list keeps its old id, and it had vanished in silence.
    const listed = (ids) => ids ? ids.map((id) => gone(id) ? id + NOT_IN_FILE : id).join(", ") : "all";
    const covered = new Set(coveredNames);  // server.require_two_step covers them: turned off, set up again at the next login
    cameraChoices(cameras);
    owned = new Map();
    for (const token of tokens) if (token.owner !== null) owned.set(token.owner, (owned.get(token.owner) || 0) + 1);
    $("users-table").tBodies[0].replaceChildren(...users.map((user) => {
      const row = document.createElement("tr");
      row.dataset.user = user.name;
      const changes = document.createElement("td");
      if (user.name !== me.user) {  // your own: Change password, which asks for the current one; your role: another admin
        changes.append(rowButton("Edit", `Edit the role and cameras of ${user.name}`, () => askEdit(user)), " ",
                       rowButton("Reset password", `Reset password of ${user.name}`, () => askReset(user.name)), " ");
        if (user.two_step) {  // a lost phone (yours: "Two-step login", with a code)
          changes.append(rowButton("Turn off two-step", `Turn off two-step login of ${user.name}`, () => ask(
            `Turn off two-step login of ${user.name}? Their sessions end at once; ` + (covered.has(user.name) ?
              "the site requires two-step login of them: at their next login they set it up again before anything else." :
              "their password alone logs in.") + stillTokens(user.name),
            `Turn off for ${user.name}`, () => change("Not turned off", async () =>
              (await send(`v1/users/${encodeURIComponent(user.name)}/two-step`, "DELETE",
                          {admin_password: yours()})).status))), " ");
        }
      }
      changes.append(rowButton("Remove", `Remove ${user.name}`, () => ask(
        `Remove ${user.name}? Their sessions end at once` + (user.name === me.user ? ", yours too." : ".")
          + alsoTokens(user.name),
        `Remove ${user.name}`, () => change("Not removed", async () =>
          (await send(`v1/users/${encodeURIComponent(user.name)}`, "DELETE", {admin_password: yours()})).status))));
      row.append(cell(user.name), cell(user.role), cell(listed(user.cameras)),
                 cell(user.two_step ? `on (${codesLeft(user.recovery_codes_left ?? 0).toLowerCase()})` : "off"), changes);
      return row;
    }));
    $("tokens-table").tBodies[0].replaceChildren(...(tokens.length ? tokens.map((token) => {
      const row = document.createElement("tr");
      row.dataset.token = token.name;
      const changes = document.createElement("td");
      changes.append(rowButton("Revoke", `Revoke the token ${token.name}`, () => ask(
        `Revoke the token ${token.name}? Whatever uses it is refused from its next request.`,
        `Revoke ${token.name}`, () => change("Not revoked", async () =>
          (await send(`v1/tokens/${encodeURIComponent(token.name)}`, "DELETE")).status))));
      row.append(cell(token.name), cell(token.scope), cell(listed(token.cameras)),
                 cell(token.owner === null ? "(site)" : token.owner),
                 cell(when(token.created)), cell(when(token.last_used)), cell(expiry(token.expires)), changes);
      return row;
    }) : [noToken()]));
    for (const table of ["users-table", "tokens-table"]) stackRows($(table));  // each value after its heading on a phone
  }

  // The confirm form: a question, a button that says what it does, and "Keep" focused (Enter keeps).
  function ask(question, yes, action) {
    $("users-reset").hidden = true;
    $("users-edit").hidden = true;
    confirming = action;
    $("users-confirm-question").textContent = question;
    $("users-confirm-yes").textContent = yes;
    $("users-confirm").hidden = false;
    $("users-confirm-no").focus();
  }
  const endConfirm = () => { $("users-confirm").hidden = true; confirming = null; };
  $("users-confirm").addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = confirming;
    endConfirm();
    open.focus();  // the row's button is gone with the row
    if (action) await action();
    if (dialog.open && !dialog.contains(document.activeElement)) $("users-title").focus();  // not from "Your password"
  });
  // Keep and Cancel hide the form their button is in: the focus went to the page's body, and Tab
  // started again at the dialog's top. The title keeps it in the dialog, as after a change.
  const kept = () => { say("Nothing changed."); $("users-title").focus(); };
  $("users-confirm-no").addEventListener("click", () => { endConfirm(); kept(); });

  function askReset(name) {
    endConfirm();
    endEdit();
    $("users-reset-title").textContent = `New password for ${name}`;
    $("users-reset-user").value = name;
    $("users-reset").hidden = false;
    $("users-reset-password").focus();
  }
  const endReset = () => {
    $("users-reset").hidden = true;
    $("users-reset-password").value = $("users-reset-again").value = "";
  };
  $("users-reset-cancel").addEventListener("click", () => { endReset(); kept(); });
  $("users-reset").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("users-reset-user").value, password = $("users-reset-password").value;
    if (!password) return say("Not set: type the new password twice.", true, $("users-reset-password"));
    if (password !== $("users-reset-again").value) return say("Not set: the two passwords differ.", true, $("users-reset-again"));
    await change("Not set", async () => {
      const {status} = await send(`v1/users/${encodeURIComponent(name)}/password`, "POST",
                                  {password, admin_password: yours()}).catch((err) => {
        throw aboutPassword(err, $("users-reset-password"));
      });
      endReset();
      return status;
    });
  });

  // A fieldset's camera boxes (built, never innerHTML), those of `ticked` ticked; one the site's file
  // no longer has marked in its label as the table marks it (Edit showed it as any other camera).
  function cameraBoxes(box, ids, ticked = []) {
    box.replaceChildren(box.querySelector("legend"), ...ids.map((id) => {
      const label = document.createElement("label");
      label.append(Object.assign(document.createElement("input"),
                                 {type: "checkbox", value: id, checked: ticked.includes(id)}),
                   " " + id + (gone(id) ? NOT_IN_FILE : ""));
      return label;
    }));
    box.dataset.cameras = ids.length;
  }
  // A viewer's or read token's cameras, ticked from those GET /v1/users says a list may name (the
  // site's config, disabled ones too, and those with stored history; `serve` without a site: none
  // to tick). The Add forms' boxes are built again only when that list changed: a list read again
  // after another change keeps what was ticked there.
  function cameraChoices(ids) {
    ids = ids || [];
    if (ids.join(",") === siteCameras.join(",") && $("users-add-cameras").dataset.cameras !== undefined) return;
    siteCameras = ids;
    cameraBoxes($("users-add-cameras"), ids);
    cameraBoxes($("tokens-add-cameras"), ids);
    $("users-add-cameras").hidden = !ids.length || $("users-add-role").value !== "viewer";
    showTokenCameras();
  }
  const showTokenCameras = () => {  // a full token acts as an admin: every camera, no list
    const box = $("tokens-add-cameras");
    box.hidden = box.dataset.cameras === "0" || $("tokens-add-scope").value !== "read";
  };

  // Edit: the role, and a viewer's cameras ticked from the site's list and their own (one no longer
  // on the site's list is shown, to be unticked, not dropped in silence); saved after a confirm.
  function askEdit(user) {
    endConfirm();
    endReset();
    editing = user;
    $("users-edit-title").textContent = `Role and cameras of ${user.name}`;
    $("users-edit-role").value = user.role;
    const own = user.cameras || [];
    cameraBoxes($("users-edit-cameras"), [...new Set([...siteCameras, ...own])], own);
    showEditCameras();
    $("users-edit").hidden = false;
    $("users-edit-role").focus();
  }
  const showEditCameras = () => {
    const box = $("users-edit-cameras");
    box.hidden = box.dataset.cameras === "0" || $("users-edit-role").value !== "viewer";
  };
  const endEdit = () => { $("users-edit").hidden = true; editing = null; };
  $("users-edit-role").addEventListener("change", showEditCameras);
  $("users-edit-cancel").addEventListener("click", () => { endEdit(); kept(); });
  $("users-edit").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = editing, role = $("users-edit-role").value;
    const ticked = [...$("users-edit-cameras").querySelectorAll("input:checked")].map((box) => box.value);
    const body = {};
    if (role !== user.role) body.role = role;
    const before = (user.cameras || []).join(",");
    if (role === "viewer" && ticked.join(",") !== before) {  // sent only when changed: a role alone keeps them
      if (ticked.length) body.cameras = ticked; else body.all_cameras = true;
    }
    if (!Object.keys(body).length) { endEdit(); return kept(); }
    // A camera gone from the site's file with no stored history (not among the choices GET /v1/users
    // sent) is refused by the server, whose words did not say the box to untick: said here, at that box.
    const dead = (body.cameras || []).filter((id) => gone(id) && !siteCameras.includes(id));
    if (dead.length) {
      const named = dead.join(", "), them = dead.length > 1 ? "them" : "it";
      return say(`Not changed: ${named} ${dead.length > 1 ? "are" : "is"} not in the site's file, and its database ` +
                 `holds no history of ${them}: untick ${them} (and tick the camera's new id, if it was renamed).`, true,
                 $("users-edit-cameras").querySelector(`input[value="${CSS.escape(dead[0])}"]`));
    }
    const seen = role === "admin" || !ticked.length ? "all cameras" : ticked.join(", ");
    const demoted = user.role === "admin" && role !== "admin" ? alsoTokens(user.name) : "";
    ask(`Make ${user.name} ${role === "admin" ? "an admin" : "a viewer"} of ${seen}? Their next request has it.` + demoted,
        `Change ${user.name}`, () => change("Not changed", async () => {
          // As this form read them: another admin's change meanwhile is refused (409), not undone.
          const sent = {...body, expected: {role: user.role, cameras: user.cameras}, admin_password: yours()};
          let now, tokens_revoked;
          try {
            ({user: now, tokens_revoked} = await send(`v1/users/${encodeURIComponent(user.name)}`, "PATCH", sent));
          } catch (err) {
            await load().catch(() => {});  // the row as it is now, to look at before trying again
            throw err;
          }
          return `${now.name} is now ${now.role} (${now.cameras ? now.cameras.join(", ") : "all cameras"}).`
            + revokedToo(tokens_revoked);
        }));
  });
  $("users-add-role").addEventListener("change", () => {
    const box = $("users-add-cameras");
    box.hidden = box.dataset.cameras === "0" || $("users-add-role").value !== "viewer";
  });
  $("users-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("users-add-name").value.trim(), role = $("users-add-role").value;
    const password = $("users-add-password").value;
    if (!name || !password) return say("Not added: give a name and a password.", true, $(name ? "users-add-password" : "users-add-name"));
    if (password !== $("users-add-again").value) return say("Not added: the two passwords differ.", true, $("users-add-again"));
    const ticked = [...$("users-add-cameras").querySelectorAll("input:checked")].map((box) => box.value);
    const body = {name, role, password};
    if (role === "viewer" && ticked.length) body.cameras = ticked;
    await change("Not added", async () => {
      const {user} = await send("v1/users", "POST", {...body, admin_password: yours()}).catch((err) => {
        throw aboutPassword(err, $("users-add-password"));
      });
      event.target.reset();
      $("users-add-cameras").hidden = $("users-add-cameras").dataset.cameras === "0";
      return `Added ${user.role} ${user.name} (${user.cameras ? user.cameras.join(", ") : "all cameras"}).`;
    });
  });

  // A token's expiry as POST /v1/tokens takes it (`expires_days`, as `tokens add --expires DAYS`):
  // 30, 90 (the default here: a token made on the dashboard is a person's) or 365 days, a number
  // of days typed, or never; tokens made here never expired.
  const showDays = () => { $("tokens-add-days-field").hidden = $("tokens-add-expires").value !== "days"; };
  $("tokens-add-expires").addEventListener("change", () => {
    showDays();
    if (!$("tokens-add-days-field").hidden) $("tokens-add-days").focus();
  });
  function expiresDays() {  // null: never; or an Error that sends the admin to the days field (change())
    const chosen = $("tokens-add-expires").value;
    if (chosen === "never") return null;
    if (chosen !== "days") return Number(chosen);
    const days = Number($("tokens-add-days").value);  // "" for text a number field cannot read
    if ($("tokens-add-days").value !== "" && Number.isInteger(days) && days >= 1 && days <= MAX_DAYS) return days;
    throw Object.assign(new Error(`give the days until it stops working, a whole number from 1 to ${MAX_DAYS}`),
                        {field: $("tokens-add-days")});
  }
  const expiresWords = (expires) => expires === null ? "never expires" : `expires ${when(expires)}`;
  $("tokens-add-scope").addEventListener("change", showTokenCameras);
  $("tokens-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("tokens-add-name").value.trim(), scope = $("tokens-add-scope").value;
    if (!name) return say("Not created: give the token a name (what uses it).", true, $("tokens-add-name"));
    const ticked = [...$("tokens-add-cameras").querySelectorAll("input:checked")].map((box) => box.value);
    const only = scope === "read" && ticked.length ? {cameras: ticked} : {};  // none ticked: every camera
    $("tokens-secret").hidden = true;
    await change("Not created", async () => {
      const {token, expires, cameras} = await send("v1/tokens", "POST",
                                                   {name, scope, ...only, expires_days: expiresDays(), admin_password: yours()});
      event.target.reset();
      showDays();
      showTokenCameras();
      $("tokens-secret-name").textContent = name;
      $("tokens-secret-value").value = token;
      $("tokens-copied").textContent = "";
      $("tokens-secret").hidden = false;
      $("tokens-copy").focus();
      const seen = cameras ? `; ${cameras.join(", ")} only` : "";
      return `Token ${name} created (${scope}${seen}; ${expiresWords(expires)}): copy it now, it is not shown again.`;
    });
  });
  $("users-me").addEventListener("submit", (event) => event.preventDefault());  // Enter there changes nothing
  $("tokens-copy").addEventListener("click", () => copyField($("tokens-secret-value"), $("tokens-copied")));  // account.js's

  open.addEventListener("click", async () => {
    say("");
    endConfirm();
    endReset();
    endEdit();
    $("users-me-name").value = me.user;  // whose password "Your password" is, for password managers
    delete $("users-add-cameras").dataset.cameras;  // its boxes built afresh, none ticked
    dialog.showModal();
    $("users-title").focus();
    try {
      await load();
    } catch (err) {
      if (err.message !== "logged out") say(`The users could not be read (${err.message}); close and try again.`, true);
    }
  });
  $("users-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {  // Escape or Close: no password nor token left in the page
    for (const id of ["users-me-password", "users-add-password", "users-add-again", "users-reset-password",
                      "users-reset-again", "tokens-secret-value"]) $(id).value = "";
    $("tokens-secret").hidden = true;
    endReset();
    endEdit();
    endConfirm();
    open.focus();
  });

  // Who is logged in, from the page's own /v1/me (asked again here, a failure was a second stale
  // notice); accountDialog shows the button to an admin.
  document.addEventListener("maskwatch-account", (event) => { me = event.detail; });
})();
