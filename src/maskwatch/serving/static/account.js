// Who is logged in (/v1/me) and the site's clock every time on the page is in; Log out, Change
// password, and the frame of the account's dialogs (users.js, access-log.js, two-step.js).

// One clock for every time the page shows (the people seen, a card's last picture, when the chart
// was read, when to try a password again, the admins' dialogs): the site's, /v1/me's `timezone`,
// as the chart's hours and events.csv's *_local columns; the browser's own where the server has
// none (`serve` without a site). The list showed the browser's: "14:05" beside a chart in Berlin's
// hours, to a manager abroad. Times read as events.csv's do, YYYY-MM-DD HH:MM:SS (cut, not rounded).
const clockOptions = {year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
                      second: "2-digit", hourCycle: "h23"};
let clockFormat = new Intl.DateTimeFormat("en-GB", clockOptions);
let clockSet;
const clockRead = new Promise((resolve) => { clockSet = resolve; });  // the site's times wait for it
function setClock(zone) {
  let site = Boolean(zone);
  try {
    clockFormat = new Intl.DateTimeFormat("en-GB", {...clockOptions, timeZone: zone || undefined});
  } catch (err) {  // a name this browser does not know (RangeError): its own clock, said as such
    site = false;
  }
  // The site's own name, as the chart's caption and the file give it: Chromium's resolved name is
  // the old one of some zones, "Times: Asia/Calcutta" above a chart "(Asia/Kolkata)".
  const named = site ? zone : clockFormat.resolvedOptions().timeZone;
  document.getElementById("clock").textContent = site ? `Times: ${named} (the site's clock)` :
    `Times: ${named} (your browser's clock)`;
  clockSet();
}
function clockParts(at) {
  return Object.fromEntries(clockFormat.formatToParts(new Date(at)).map((part) => [part.type, part.value]));
}
// `at`: a Date, milliseconds or an ISO time, as "2026-09-24 08:00:01"; in the hour the clocks go back
// over, with its UTC offset, "2026-10-25 02:30:00 (UTC+01:00)": two people an hour apart read alike,
// the later listed first as if earlier (as the chart's two 02:00 hours, chart.js).
function clockTime(at) {
  const wall = (moment) => {
    const p = clockParts(moment);
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  };
  const moment = new Date(at).getTime(), text = wall(moment);
  // The clocks go back by an hour, or by half an hour (Lord Howe Island): the same reading that far off.
  const repeated = [-3600e3, -1800e3, 1800e3, 3600e3].some((shift) => wall(moment + shift) === text);
  if (!repeated) return text;
  // Its offset: the wall clock read as UTC, less the moment. Not Intl's timeZoneName "longOffset",
  // which a browser before it (Safari 15.3, Chrome 94) refused with a RangeError at this script's
  // load: the page had no clock, no Log out, no Change password.
  const p = clockParts(moment);
  const minutes = Math.round((Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) -
                              Math.floor(moment / 1000) * 1000) / 60000);
  const two = (n) => String(n).padStart(2, "0");
  return `${text} (UTC${minutes < 0 ? "-" : "+"}${two(Math.floor(Math.abs(minutes) / 60))}:${two(Math.abs(minutes) % 60)})`;
}
// "08:00": a time of about now (the chart read, a password tried again, a camera offline since);
// in the hour the clocks go back over, with its offset as clockTime's, "02:30 (UTC+01:00)": a card
// said "offline since 02:30" of either.
function clockMinute(at) {
  const p = clockParts(at), full = clockTime(at), offset = full.indexOf(" (UTC");
  return `${p.hour}:${p.minute}` + (offset < 0 ? "" : full.slice(offset));
}

let accountRole = null;  // "admin" or "viewer", as /v1/me says
// Asked until answered (once, a failure at load left the page without its Log out button for good).
function showAccount() {
  keepPolling(async () => {
    const me = await readMe();
    accountRole = me.role;  // before the clock: the cards wait for it (an offline card's "What to do")
    setClock(me.timezone);
    if (me.via === "session") {  // an open server (no users yet) has nobody to log out
      document.getElementById("account-name").textContent = me.user + " (" + me.role + ")";
      document.getElementById("password-user").value = me.user;
      document.getElementById("account").hidden = false;
    }
    planSessionEnd(me.session);
    document.dispatchEvent(new CustomEvent("maskwatch-account", {detail: me}));  // users.js's Users button
    setTimeout(() => keepPolling(() => checkSiteClock(me.timezone), SITE_CLOCK_EVERY), SITE_CLOCK_EVERY);
    return false;
  }, 5000);
}

// The site's clock, read once at load, is asked again each hour: a page left open (a wall screen)
// through a restart with another `timezone` showed the people's and the cards' times in the old
// one, beside a chart in the new, for as long as it was open. Changed, the page reloads
// (dashboard.js's reloadAsServed: not under an open dialog nor in use; held, at a later answer).
const SITE_CLOCK_EVERY = 3600e3;
async function checkSiteClock(zone) {
  if ((await readMe()).timezone === zone) return;
  reloadWanted = "the site's clock changed";
  reloadAsServed(reloadWanted);
}

// A session ends server.session_max_hours after login, however used: said SESSION_WARNING before, in
// #session-end (role=status), with its time; the page went to the login page without a word (WCAG
// 2.2.1). /v1/me is asked again then and each minute after: a password change or a two-step login
// change starts a new session. Its idle end needs no warning: the page's polls use it every second
// while it is shown. A hidden page asks nothing (its turn waits in dashboard.js's `paused`, asked once
// shown): its timer's /v1/me kept an idle session alive, up to its last 5 minutes (docs/site.md).
// Counted on the server's clock (its answer's Date header): a till whose clock was 10 minutes
// slow warned 10 minutes late, after the session had ended.
const SESSION_WARNING = 5 * 60;  // seconds
let sessionTimer = null;
let serverAhead = 0;  // ms the server's clock is ahead of the browser's
async function readMe() {
  const response = await api("v1/me");
  if (!response.ok) throw new Error(`/v1/me: ${response.status}`);
  const date = Date.parse(response.headers.get("Date"));  // to the second, cut: +0.5 s on average
  if (!Number.isNaN(date)) serverAhead = date + 500 - Date.now();
  return response.json();
}
function planSessionEnd(session) {
  clearTimeout(sessionTimer);
  const left = session ? (Date.parse(session.ends_at) - Date.now() - serverAhead) / 1000 : null;
  const near = session && left <= SESSION_WARNING;
  const text = near ? `Your session ends at ${clockMinute(session.ends_at)}, however much you use it: log in ` +
    "again then to go on. Zones you are drawing are kept in this tab." : "";
  const notice = byId("session-end");
  if (notice.textContent !== text) notice.textContent = text;  // said once, not each minute
  if (!session) return;
  const wait = near ? 60 : left - SESSION_WARNING;
  sessionTimer = setTimeout(rereadSessionEnd, Math.min(wait, 86400) * 1000);  // setTimeout's limit is 24.8 days
}
async function rereadSessionEnd() {
  if (document.hidden) { paused.add(rereadSessionEnd); return; }
  try {
    planSessionEnd((await readMe()).session);
  } catch (err) {
    if (err.message !== "logged out") sessionTimer = setTimeout(rereadSessionEnd, 60000);
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  // A logout the server never got, or refused, left the page as it was, read as logged out (on a
  // shared till, walked away from with the session alive): say so.
  // A poll the server refuses meanwhile (the session this ends) leaves the page to this handler: it
  // sent the page to the login page's "Your session has ended" over the logout's own plain one.
  const failed = document.getElementById("logout-error");
  failed.textContent = "";
  leaving = true;
  try {
    const response = await api("logout", {method: "POST"});
    if (response.ok) { forgetDrafts(); return location.assign("login"); }
    failed.textContent = `Not logged out: the server answered ${response.status}; try again.`;
  } catch (err) {
    // 401: the session had already ended (elsewhere, or it lapsed): logged out all the same.
    if (err.message === "logged out") { forgetDrafts(); return location.assign("login"); }
    failed.textContent = "Not logged out: the server did not answer; try again.";
  }
  leaving = false;
});

// Change password: a dialog (Escape or Cancel closes it, its fields emptied); what went wrong is
// said in one line in it (read out: role="alert"), and the change that went through under the
// account line once it has closed.
const passwordDialog = document.getElementById("password-dialog");
const passwordForm = document.getElementById("password-form");
const passwordOpen = document.getElementById("password-open");
const passwordError = document.getElementById("password-error");
const passwordMessage = document.getElementById("password-message");
const passwordFields = ["password-current", "password-code", "password-new", "password-again"].map((id) => document.getElementById(id));
// The code (the app's or a recovery code): asked of a user with two-step login on only, as POST
// /password asks it (the dialog had no field for it: such a user was refused with no way to send one).
const [passwordCurrent, passwordCode] = passwordFields;
const passwordCodeField = document.getElementById("password-code-field");
document.addEventListener("maskwatch-account", (event) => { passwordCodeField.hidden = event.detail.two_step !== true; });
// and as two-step.js turns it on or off in this page (the code field stayed as the page was opened:
// hidden, POST /password refused the user for a code it gave no field for; shown, it was required)
document.addEventListener("maskwatch-two-step", (event) => { passwordCodeField.hidden = !event.detail.on; });
const passwordAsked = () => passwordFields.filter((field) => field !== passwordCode || !passwordCodeField.hidden);
passwordOpen.addEventListener("click", () => {
  passwordError.textContent = passwordMessage.textContent = "";
  passwordDialog.showModal();
  passwordFields[0].focus();
});
document.getElementById("password-cancel").addEventListener("click", () => passwordDialog.close());
passwordDialog.addEventListener("close", () => {  // Cancel, Escape or done: no password left in the page
  passwordFields.forEach((field) => { field.value = ""; field.removeAttribute("aria-invalid"); });
  passwordOpen.focus();
});
// A refusal said, and the field it is about focused, its text selected and marked invalid (a screen
// reader says so with the error, its description): the focus stayed on the button, the field unsaid.
function passwordRefused(reason, field) {
  passwordError.textContent = `Not changed: ${reason}`;
  if (!field) return;
  field.setAttribute("aria-invalid", "true");
  field.focus();
  field.select();
}
// When to try again (Retry-After), said once: a wait of a minute or more as the time on the page's
// clock, rounded up to the minute, in place of the server's "try again in 898 s" (both were shown,
// side by side); a shorter one ("in a second") as the server says it.
function tryAgainAt(reason, wait) {
  if (!(wait >= 60)) return reason;
  const at = new Date(Math.ceil((Date.now() + wait * 1000) / 60000) * 60000);
  return reason.replace(/;? *try again in [^;]*$/, "") +
    `; try again at ${clockMinute(at)}`;
}
// While the change is in flight the dialog says so and its button is marked busy: a slow server
// showed nothing, and a second press was ignored without a word.
const passwordBusy = document.getElementById("password-busy");
const passwordSubmit = passwordForm.querySelector("button[type=submit]");
passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (passwordChanging) return void (passwordBusy.textContent = "Still changing your password: a moment.");
  const asked = passwordAsked();
  const [current, code, fresh, again] = passwordFields.map((field) => field.value);
  passwordError.textContent = "";
  passwordFields.forEach((field) => field.removeAttribute("aria-invalid"));
  const empty = asked.find((field) => !field.value);
  if (empty) return passwordRefused(`fill in all ${asked.length === 4 ? "four" : "three"} fields.`, empty);
  if (fresh !== again) return passwordRefused("the two new passwords differ.", passwordFields[3]);
  passwordBusy.textContent = "Changing your password…";
  passwordSubmit.setAttribute("aria-disabled", "true");
  try {
    const sent = asked.includes(passwordCode) ? {current, new: fresh, code} : {current, new: fresh};
    const answer = api("password", {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify(sent)});
    passwordChanging = answer.then((response) => response.ok, () => false);
    const response = await answer;
    if (response.ok) {
      passwordDialog.close();
      passwordMessage.textContent = "Password changed; your other sessions were logged out.";
      return;
    }
    let reason = `the server answered ${response.status}`;
    try { reason = (await response.json()).error || reason; } catch (err) { /* not JSON: the status says it */ }
    reason = tryAgainAt(reason, Number(response.headers.get("Retry-After")));  // 429: guessed too often; 503: busy
    // 403: the current password is wrong, or (two-step login on) it or the code, the server saying
    // not which: both marked, the code emptied (good once, as two-step.js's) and focused; 400: the
    // new one is refused (too short, the name, unchanged)
    const codeToo = response.status === 403 && asked.includes(passwordCode);
    if (codeToo) { passwordCurrent.setAttribute("aria-invalid", "true"); passwordCode.value = ""; }
    passwordRefused(`${reason}.`, codeToo ? passwordCode : {403: passwordCurrent, 400: passwordFields[2]}[response.status]);
  } catch (err) {
    if (err.message !== "logged out") passwordRefused("the server did not answer; try again.");
  } finally {
    passwordChanging = null;
    passwordBusy.textContent = "";
    passwordSubmit.removeAttribute("aria-disabled");
  }
});

// A dialog about the account (users.js: "users", access-log.js: "access-log", two-step.js:
// "two-step"): its markup added to the page and its button (NAME-open), put by `place` (beside "Log
// out" by default) and shown while the page's /v1/me says `shown` of the one logged in (by default
// an admin: a viewer, an open server or a token has none; the server refuses them anyway). `say`
// puts one line in NAME-error (an error) or NAME-status, the other emptied; an error about a
// `field` marks it invalid, described by the error, and focuses it (the error stood at the dialog's
// top, tied to no field, the focus left on the button); the next line said unmarks it.
const adminLoggedIn = (me) => me.via === "session" && me.role === "admin";
function accountDialog(name, label, markup, {shown = adminLoggedIn, place = (open) => byId("logout").before(open, " ")} = {}) {
  document.body.insertAdjacentHTML("beforeend", markup);
  const open = Object.assign(document.createElement("button"),
                             {type: "button", id: `${name}-open`, textContent: label, hidden: true});
  open.setAttribute("aria-haspopup", "dialog");
  place(open);
  document.addEventListener("maskwatch-account", (event) => { open.hidden = !shown(event.detail); });
  const say = (text, error = false, field = null) => {
    for (const marked of byId(`${name}-dialog`).querySelectorAll("[aria-invalid]")) marked.removeAttribute("aria-invalid");
    byId(`${name}-error`).textContent = error ? text : "";
    byId(`${name}-status`).textContent = error ? "" : text;
    if (!field) return;
    field.setAttribute("aria-invalid", "true");
    const described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!described.includes(`${name}-error`)) field.setAttribute("aria-describedby", [...described, `${name}-error`].join(" "));
    field.focus();
  };
  return {dialog: byId(`${name}-dialog`), open, say};
}

// How many recovery codes are left, in words: two-step.js's dialog and button, users.js's Two-step
// login column (`users list` says it so too: user_words.codes_left_words).
const codesLeft = (n) => `${n ? n : "No"} recovery code${n === 1 ? "" : "s"} left`;

// A text field's value to the clipboard, said in `said`; also users.js's token.
async function copyField(field, said) {
  try {
    await navigator.clipboard.writeText(field.value);  // only on https or this machine
    said.textContent = "Copied.";
  } catch {
    field.select();  // plain http on a LAN: the old way, or the reader copies the selection
    said.textContent = document.execCommand("copy") ? "Copied." : "Selected: copy it with the keyboard (Ctrl+C).";
  }
}
