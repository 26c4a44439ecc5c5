// "Two-step login" beside "Change password": a logged-in user turns authenticator-app codes on or
// off for their own login (POST /two-step/secret, POST /two-step, DELETE /two-step). Loaded after
// the dashboard's own script, whose accountDialog(), answered() and passwordChanging it uses. Every
// value is set as text; the secret is shown while the dialog is open and dropped when it closes.
(() => {
  const MARKUP = `
<dialog id="two-step-dialog" aria-labelledby="two-step-title">
<style>
  #two-step-dialog { width: min(28em, calc(100vw - 2em)); box-sizing: border-box; }
  #two-step-dialog label { display: block; margin: 0.5em 0; }
  #two-step-dialog input:not([hidden]) { display: block; width: 100%; box-sizing: border-box; min-height: 2.2em; }
  #two-step-dialog div[hidden] { display: none; }
  #two-step-secret { overflow-wrap: anywhere; font-size: 1.1em; }
  #two-step-error { color: #c62828; } #two-step-error:empty, #two-step-status:empty { margin: 0; }
</style>
<form id="two-step-form" novalidate>
  <h2 id="two-step-title" tabindex="-1">Two-step login</h2>
  <p id="two-step-state"></p>
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
    <label>Code from the app <input id="two-step-code" inputmode="numeric" autocomplete="one-time-code"
      maxlength="16" aria-describedby="two-step-error"></label>
    <button type="submit" id="two-step-submit"></button>
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

  document.addEventListener("maskwatch-account", (event) => {
    on = event.detail.two_step === true;
    $("two-step-user").value = event.detail.user || "";
  });
  // The dialog as the state is: on (turn off with password and code), off (set up), or set up
  // begun (the secret shown, turn on with password and a code from it).
  function show(begun = false) {
    $("two-step-state").textContent = on ? "On: each login asks for the code from your app as well as your password."
      : "Off: your password alone logs you in. With it on, a stolen password is not enough.";
    $("two-step-begin").hidden = on || begun;
    $("two-step-new").hidden = !begun;
    $("two-step-fields").hidden = !(on || begun);
    $("two-step-submit").textContent = on ? "Turn off" : "Turn on";
  }
  function forget() {  // no secret, password or code left in the page
    ["two-step-password", "two-step-code"].forEach((id) => { $(id).value = ""; });
    $("two-step-secret").textContent = "";
    $("two-step-uri").removeAttribute("href");
    $("two-step-qr").removeAttribute("src");
  }

  open.addEventListener("click", () => {
    say("");
    show();
    dialog.showModal();
    $("two-step-title").focus();
  });
  $("two-step-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { forget(); open.focus(); });

  $("two-step-begin").addEventListener("click", async () => {
    say("");
    try {
      const made = await answered("/two-step/secret", {method: "POST"});
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

  $("two-step-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = $("two-step-password").value, code = $("two-step-code").value;
    const empty = !password ? "two-step-password" : !code ? "two-step-code" : null;
    if (empty) { say("Fill in your password and the code.", true); return $(empty).focus(); }
    const turningOn = !on;
    say(turningOn ? "Turning two-step login on…" : "Turning two-step login off…");
    try {
      const call = answered("/two-step", {method: turningOn ? "POST" : "DELETE",
                                          headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({password, code})});
      // Turning it on ends every session of this user and sends this browser a new one: a poll
      // refused meanwhile is asked again, as during a password change.
      if (turningOn) passwordChanging = call.then(() => true, () => false);
      await call;
      on = turningOn;
      forget();
      show();
      say(on ? "Two-step login is on; your other sessions were logged out." : "Two-step login is off.");
    } catch (err) {
      if (err.message !== "logged out") {
        say(`Not changed: ${err.message}.`, true);
        $("two-step-code").value = "";  // a code is good once: the next try needs the next one
        $("two-step-code").focus();
      }
    } finally {
      passwordChanging = null;
    }
  });
})();
