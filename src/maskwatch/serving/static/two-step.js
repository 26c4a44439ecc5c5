// "Two-step login" beside "Change password": a logged-in user turns authenticator-app codes on or
// off for their own login (POST /two-step/secret, POST /two-step, DELETE /two-step), makes a new
// set of recovery codes (POST /two-step/recovery-codes), and moves it to a new phone in one step
// (POST /two-step/secret, then POST /two-step/replace: never off meanwhile, so under require_two_step too). Loaded after the dashboard's own scripts,
// whose accountDialog(), answered(), codesLeft(), copyField() and passwordChanging it uses. Every value is set as
// text; the secret and the recovery codes are shown while the dialog is open and dropped when it closes.
(() => {
  const MARKUP = `
<dialog id="two-step-dialog" aria-labelledby="two-step-title">
<form id="two-step-form" novalidate>
  <h2 id="two-step-title" tabindex="-1">Two-step login</h2>
  <p id="two-step-state"></p>
  <p id="two-step-few" hidden></p>
  <div id="two-step-recovery" hidden>
    <p>Your recovery codes: each logs you in once in place of the app's code, should the phone be lost.
      They are shown this once: copy or print them, and keep them apart from the phone.</p>
    <label>Recovery codes <textarea id="two-step-codes" rows="10" cols="12" readonly></textarea></label>
    <p><button type="button" id="two-step-copy">Copy</button> <button type="button" id="two-step-print">Print</button>
      <span id="two-step-copied" role="status"></span></p>
  </div>
  <p><button type="button" id="two-step-begin" hidden>Set up with an authenticator app</button></p>
  <div id="two-step-new" hidden>
    <p>Add this site to your authenticator app: scan the code, or type the secret. It is shown this once.</p>
    <img id="two-step-qr" alt="QR code of the secret below" hidden>
    <p>Secret: <code id="two-step-secret"></code></p>
    <p><a id="two-step-uri">Open in an authenticator app on this device</a></p>
  </div>
  <div id="two-step-fields" hidden>
    <input type="text" id="two-step-user" autocomplete="username" hidden readonly>
    <label>Your password <input type="password" id="two-step-password" autocomplete="current-password"
      aria-describedby="two-step-error"></label>
    <label><span id="two-step-code-label">Code from the app (or, once on, a recovery code)</span>
      <input id="two-step-code" autocomplete="one-time-code" maxlength="16" aria-describedby="two-step-error"></label>
    <label id="two-step-new-code-field" hidden>Code from the new phone's app <input id="two-step-new-code"
      autocomplete="off" inputmode="numeric" maxlength="16" aria-describedby="two-step-error"></label>
    <button type="submit" id="two-step-submit"></button>
    <button type="button" id="two-step-renew" hidden>New recovery codes</button>
    <button type="button" id="two-step-move" hidden>New phone</button>
  </div>
  <p id="two-step-error" role="alert"></p>
  <p id="two-step-status" role="status"></p>
  <p><button type="button" id="two-step-close">Close</button></p>
</form>
</dialog>`;
  const $ = (id) => document.getElementById(id);
  // Any user logged in has it (a token or an open server has no login to secure), beside "Change password".
  const {dialog, open, say} = accountDialog("two-step", "Two-step login", MARKUP, {
    shown: (me) => me.via === "session", place: (button) => $("password-open").after(" ", button)});
  let on = false;  // as the server said: /v1/me's two_step, then each change's answer
  let left = null;  // recovery codes left: /v1/me's recovery_codes_left, then each change's answer
  // The site requires two-step login of this user (server.require_two_step) and it is off: the
  // server answers nothing else, so the dialog opens by itself; closed after a change, the page reloads.
  let covered = false, reload = false;
  // The site requires it of this user, on or off (/v1/me's two_step_kept): no "Turn off" (the server refuses it).
  let kept = false;
  const FEW = 3;  // this many left or fewer: said on the button too, so that it is seen without opening (the only place it is set)
  // One request at a time: a double click on "New recovery codes" sent the used code again, a failed
  // login whose "Not changed" stood under the codes the first had made.
  let busy = false;
  let sheet = null;  // the window Print opened (below)
  async function alone(act) {
    if (busy) return;
    busy = true;
    try { await act(); } finally { busy = false; }
  }

  function counted(codes) {
    left = codes;
    const few = on && left !== null && left <= FEW;
    open.textContent = few ? `Two-step login (${codesLeft(left).toLowerCase()})` : "Two-step login";
    $("two-step-few").hidden = !few;
    $("two-step-few").textContent = few ? `${left ? "Only " : ""}${codesLeft(left)}: make a new set with your ` +
      "password and a code (New recovery codes)." : "";
  }
  document.addEventListener("maskwatch-account", (event) => {
    on = event.detail.two_step === true;
    covered = covered || event.detail.two_step_required === true;
    kept = event.detail.two_step_kept === true;
    counted(event.detail.recovery_codes_left ?? null);
    $("two-step-user").value = event.detail.user || "";
    if (covered && !on && !dialog.open) showDialog();
  });
  // The dialog as the state is: on (turn off with password and code), off (set up), set up
  // begun (the secret shown, turn on with password and a code from it), or, on, a new phone begun
  // (the new secret shown, moved with the password, the current phone's code and the new one's).
  let moving = false;
  function show(begun = false) {
    moving = on && begun;
    $("two-step-state").textContent = moving ? "New phone: your current phone keeps working until the new " +
        "one's code is confirmed here; then only the new one does, and you get new recovery codes."
      : on ? "On: each login asks for the code from your app as well as your password. " +
        `${codesLeft(left ?? 0)}.` + (kept ? " This site requires it of your account: it stays on. For a new phone, " +
        "use New phone; with neither your phone nor a recovery code left, ask an admin to turn it off." : "")
      : (covered ? "This site requires two-step login of your account: set it up to go on. "
        : "") + "Off: your password alone logs you in. With it on, a stolen password is not enough.";
    $("two-step-begin").hidden = on || begun;
    $("two-step-new").hidden = !begun;
    $("two-step-fields").hidden = !(on || begun);
    $("two-step-code-label").textContent = moving ? "Code from the current phone's app (or a recovery code)"
      : "Code from the app (or, once on, a recovery code)";
    $("two-step-new-code-field").hidden = !moving;
    $("two-step-submit").textContent = moving ? "Move to the new phone" : on ? "Turn off" : "Turn on";
    $("two-step-submit").hidden = on && kept && !moving;
    $("two-step-renew").hidden = $("two-step-move").hidden = !on || moving;
  }
  function showCodes(codes) {  // shown this once, until the dialog closes
    $("two-step-codes").value = codes.join("\n");
    $("two-step-recovery").hidden = false;
    $("two-step-copied").textContent = "";
  }
  function forget() {  // no secret, password, code or recovery code left in the page, nor in Print's window
    ["two-step-password", "two-step-code", "two-step-new-code", "two-step-codes"].forEach((id) => { $(id).value = ""; });
    sheet?.close();
    sheet = null;
    $("two-step-recovery").hidden = true;
    $("two-step-secret").textContent = "";
    $("two-step-uri").removeAttribute("href");
    $("two-step-qr").removeAttribute("src");
  }

  function showDialog() {
    say("");
    show();
    dialog.showModal();
    $("two-step-title").focus();
  }
  open.addEventListener("click", showDialog);
  $("two-step-close").addEventListener("click", () => dialog.close());
  $("two-step-copy").addEventListener("click", () => copyField($("two-step-codes"), $("two-step-copied")));
  // Print: the codes alone, in a window of their own, titled with whose and which site's they are
  // (untitled, the printed page's header said "about:blank"); closed once printed and with the
  // dialog, as the codes are dropped (it kept them on screen after).
  $("two-step-print").addEventListener("click", () => {
    sheet?.close();
    const opened = sheet = window.open("", "_blank", "width=400,height=500");
    if (!opened) return void ($("two-step-copied").textContent = "The browser refused a new window: copy them instead.");
    const whose = `maskwatch recovery codes of ${$("two-step-user").value} at ${location.origin}`;
    opened.document.title = whose;
    const list = opened.document.createElement("pre");
    list.textContent = `${whose}\n\n${$("two-step-codes").value}`;
    opened.document.body.append(list);
    opened.addEventListener("afterprint", () => opened.close());
    opened.print();
  });
  dialog.addEventListener("close", () => {
    forget();
    if (reload) return void location.reload();  // the page's reads, refused until now
    open.focus();
  });

  // "Set up", or "New phone" where it is on: a new secret, shown; nothing changes until it is confirmed.
  const begin = () => alone(async () => {
    say("");
    try {
      const made = await answered("two-step/secret", {method: "POST"});
      $("two-step-secret").textContent = made.secret;
      $("two-step-uri").href = made.uri;
      $("two-step-qr").hidden = !made.qr_svg;
      if (made.qr_svg) $("two-step-qr").src = made.qr_svg;
      show(true);
      $("two-step-password").focus();
    } catch (err) {
      if (err.message !== "logged out") say(`Not set up: ${err.message}.`, true);
    }
  });
  $("two-step-begin").addEventListener("click", begin);
  $("two-step-move").addEventListener("click", begin);

  // The password and code typed, or null (said, and the empty field focused).
  function typed() {
    const password = $("two-step-password").value, code = $("two-step-code").value;
    const empty = !password ? "two-step-password" : !code ? "two-step-code" : null;
    if (empty) { say("Fill in your password and the code.", true, $(empty)); return null; }
    return JSON.stringify({password, code});
  }
  const asJson = (method, body) => ({method, headers: {"Content-Type": "application/json"}, body});

  $("two-step-renew").addEventListener("click", () => alone(async () => {
    const body = typed();
    if (!body) return;
    say("Making new recovery codes…");
    try {
      const made = await answered("two-step/recovery-codes", asJson("POST", body));
      forget();
      counted(made.recovery_codes.length);
      show();
      showCodes(made.recovery_codes);
      say("New recovery codes made; the old ones no longer work.");
      $("two-step-codes").focus();
    } catch (err) {
      refused(err);
    }
  }));

  $("two-step-form").addEventListener("submit", (event) => {
    event.preventDefault();  // a second submit too: it would leave the page
    // Enter in a field submits by the first button, hidden where the site keeps two-step on: not a turn-off
    if ($("two-step-submit").hidden) return;
    alone(() => (moving ? move() : turn()));
  });
  async function move() {
    const body = typed(), newCode = $("two-step-new-code").value;
    if (!body) return;
    if (!newCode) { say("Fill in the code the new phone's app shows.", true, $("two-step-new-code")); return; }
    say("Moving two-step login to the new phone…");
    try {
      const call = answered("two-step/replace", asJson("POST", JSON.stringify({...JSON.parse(body), new_code: newCode})));
      passwordChanging = call.then(() => true, () => false);  // it ends the other sessions too (as turn() below)
      const answer = await call;
      forget();
      counted(answer.recovery_codes.length);
      show();
      showCodes(answer.recovery_codes);
      say("Two-step login moved to the new phone; the old one and the old recovery codes no longer work, " +
        "and your other sessions were logged out.");
      $("two-step-codes").focus();
    } catch (err) {
      refused(err);
      $("two-step-new-code").value = "";
    } finally {
      passwordChanging = null;
    }
  }
  async function turn() {
    const body = typed();
    if (!body) return;
    const turningOn = !on;
    say(turningOn ? "Turning two-step login on…" : "Turning two-step login off…");
    try {
      const call = answered("two-step", asJson(turningOn ? "POST" : "DELETE", body));
      // Turning it on or off ends every other session of this user and sends this browser a new
      // one: a poll refused meanwhile is asked again, as during a password change.
      passwordChanging = call.then(() => true, () => false);
      const answer = await call;
      on = turningOn;
      // the Change password dialog asks for a code while it is on (account.js): it had read /v1/me once
      document.dispatchEvent(new CustomEvent("maskwatch-two-step", {detail: {on}}));
      reload = reload || covered;
      forget();
      counted(on ? answer.recovery_codes.length : null);
      show();
      if (on) showCodes(answer.recovery_codes);
      say(on ? "Two-step login is on; your other sessions were logged out."
        : "Two-step login is off; your other sessions were logged out.");
    } catch (err) {
      refused(err);
    } finally {
      passwordChanging = null;
    }
  }
  function refused(err) {
    if (err.message === "logged out") return;
    say(`Not changed: ${err.message}.`, true);
    $("two-step-code").value = "";  // a code is good once: the next try needs the next one
    $("two-step-code").focus();
  }
})();
