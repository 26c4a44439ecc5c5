// The dashboard's own script, the first of its files (dashboard.html loads them in this order:
// dashboard.js, account.js, photo.js, people.js, chart.js, alerts.js, cameras.js, zones.js, then the dialogs'
// users.js, access-log.js and two-step.js). Classic scripts: one global scope, so a name is declared
// in one file only, and a file's top level uses only what the files before it declare.
// Here: every call to the server, the polling loops, and the helpers the other files share.

// Every call to the API: our CSRF header (state-changing requests need it), and a lapsed or
// ended session sends the browser to the login page.
// A read that gets no answer in 15 s fails (a dropped Wi-Fi or a hung server held a fetch for
// minutes, with the old figures shown and nothing said); an upload may take its time.
const READ_TIMEOUT = 15000;
// While the user's own password change is in flight: whether it went through (a promise). A
// request sent meanwhile carries the session the change ends, and the server may answer it 401
// before the new session's cookie is back (a poll, on a phone's slow link); it is asked again.
let passwordChanging = null;
let leaving = false;  // on the way to the login page
async function api(url, options = {}) {
  const changing = passwordChanging;
  const signal = options.method ? undefined : AbortSignal.timeout(READ_TIMEOUT);
  const response = await fetch(url, {signal, ...options, headers: {...(options.headers || {}), "X-Maskwatch-CSRF": "1"}});
  const serving = response.headers.get("X-Maskwatch-Page");
  if (serving && serving !== LOADED_AS) reloadAsServed("the server serves another version of the page");
  else if (reloadWanted) reloadAsServed(reloadWanted);
  if (response.status === 401) {
    if (changing && await changing) return api(url, options);  // with the new session's cookie
    // "#ended": the login page says why it came (a fragment: the server's query is its own). Once:
    // the polls refused together each started it again, aborting the one before (ERR_ABORTED).
    // The address's query comes back with it: it holds the chart's choices.
    if (!leaving) location.assign("login?next=" + encodeURIComponent(location.pathname + location.search) + "#ended");
    leaving = true;
    throw new Error("logged out");
  }
  if (response.status === 503) {
    // The server's own words in the stale notice (the database that does not answer): it said
    // "The server does not answer" of a server that answered 503 at once, naming what was wrong.
    response.clone().json().then((body) => {
      if (typeof body.error === "string") staleWhy(body.error.charAt(0).toUpperCase() + body.error.slice(1));
    }, () => {});
  }
  return response;
}

// The page as the server serves it now. A dashboard left open for weeks (a wall screen by the
// entrance) ran the scripts it was loaded with for good: after an upgrade, the old scripts against
// the new API; after a restart with another site.yaml, a removed camera's card frozen at its last
// state, a new camera with no place in the choices. Reloaded by itself when an answer's
// X-Maskwatch-Page (service_api.page_identity) is not the one it was loaded as, or when the cameras
// it is shown change (cameras.js); not while a dialog is open (a password or zones being typed: the
// next answer, a second on, asks again once it is closed), nor while it is in use (touched in the
// last IN_USE: the answer to a photo just checked reloaded the page and took its result away; a
// wall screen nobody touches reloads at once). Once a minute at most, and reloads in a
// row (each within twice the wait before it) wait twice as long each time, up to an hour: two
// processes of two versions answering in turn (a rolling upgrade, an upgrade left half done
// behind a load balancer) reloaded a wall screen every minute for as long as both answered.
// The page is asked for first: a reload into a server gone again (a restart that failed) left the
// browser's own error page, which nothing on a kiosk reloads.
const LOADED_AS = document.querySelector('meta[name="maskwatch-page"]').content;
const RELOADED = "maskwatch-reloaded";  // sessionStorage: {at, wait} of the tab's last reload of its own
const RELOAD_WAIT = 60e3, RELOAD_WAIT_MOST = 3600e3;
let askingForPage = false;  // the page asked for before a reload, not answered yet
// Why the page is to reload, found by a check made once an hour (account.js's site clock): asked
// again at each answer while held, as another version is (it waited for the next check, an hour).
let reloadWanted = null;
const IN_USE = 5 * 60e3;
let touchedAt = -Infinity;  // the last key, click, touch, scroll or change of a field
for (const type of ["keydown", "pointerdown", "wheel", "input"]) {
  window.addEventListener(type, () => { touchedAt = Date.now(); }, {capture: true, passive: true});
}
const held = () => leaving || document.querySelector("dialog[open]") || Date.now() - touchedAt < IN_USE;
function lastReload() {  // {at, wait}: the tab's last reload of its own, and how long the next waits
  try {
    const last = JSON.parse(sessionStorage.getItem(RELOADED));
    const since = Date.now() - last.at;
    if (since >= 0) return {since, wait: last.wait};  // (a clock set back: as if none)
  } catch (err) { /* none */ }
  return null;
}
async function reloadAsServed(why) {
  if (askingForPage || held()) return;
  const last = lastReload();
  if (last && last.since < last.wait) return;
  askingForPage = true;
  try {
    if (!(await fetch(location.href, {signal: AbortSignal.timeout(READ_TIMEOUT)})).ok) return;
  } catch (err) {
    return;  // the next answer asks again
  } finally {
    askingForPage = false;
  }
  if (held()) return;
  const wait = last && last.since < 2 * last.wait ? Math.min(RELOAD_WAIT_MOST, 2 * last.wait) : RELOAD_WAIT;
  sessionStorage.setItem(RELOADED, JSON.stringify({at: Date.now(), wait}));
  leaving = true;  // nothing more asked or shown by this page
  console.info(`maskwatch: reloading the page: ${why}`);
  location.reload();
}

const LABELS = {with_mask: "mask", without_mask: "no mask", mask_weared_incorrect: "worn incorrectly",
                unassessable: "unassessable"};

// A table that stacks on a phone (dashboard.css: the people seen, the Access log, the Users
// dialog's users and tokens): its roles said, as a table shown as blocks loses them in browsers,
// and each cell's heading in its data-label, shown before its value. Called again after rows are added.
function stackRows(table) {
  table.setAttribute("role", "table");
  for (const group of [table.tHead, ...table.tBodies]) group.setAttribute("role", "rowgroup");
  const headings = [...table.tHead.rows[0].cells].map((th) => {
    th.setAttribute("role", "columnheader");
    return th.textContent;
  });
  for (const row of [table.tHead.rows[0], ...table.tBodies[0].rows]) {
    row.setAttribute("role", "row");
    for (const [column, cell] of [...row.cells].entries()) {
      if (cell.tagName !== "TD") continue;
      cell.setAttribute("role", "cell");
      if (cell.colSpan === 1) cell.dataset.label = headings[column];  // not "Nobody seen yet."
    }
  }
}

// A box whose table may scroll sideways (.scroll, role=region: the chart's figures, the people seen, the
// Users dialog's users and tokens) is a keyboard stop, labelled "(scrolls sideways)", only while it
// does: under 40em the people, users and tokens stack and scroll nothing, and a stop that scrolled
// nothing still said it scrolled. Checked whenever the box or its table changes size (a resize, a
// turned phone, rows added, a dialog opened).
function watchSideways(root) {
  const check = new ResizeObserver((entries) => {
    for (const box of new Set(entries.map((entry) => entry.target.closest(".scroll")))) {
      const scrolls = box.scrollWidth > box.clientWidth;
      if (scrolls) box.tabIndex = 0; else box.removeAttribute("tabindex");
      box.setAttribute("aria-label", box.dataset.name + (scrolls ? " (scrolls sideways)" : ""));
    }
  });
  for (const box of root.querySelectorAll(".scroll[role=region]")) {
    box.dataset.name = box.getAttribute("aria-label");
    check.observe(box);
    if (box.firstElementChild) check.observe(box.firstElementChild);
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// A percentage in whole percents (`whole`: rounded, or an interval's end rounded outwards), except
// where rounding carries it across a threshold `below` (percent): then as the server has it, to 2
// decimals. The server judges "under" on its 4-decimal shares (ComplianceEstimate.below, the alerts,
// Prometheus's MaskwatchComplianceLow); a top end of 79.97 % rounded up to 80 read "not under 80"
// on the chart while the alert for the same people fired. The chart and the alerts' list share it.
const sided = (value, whole, below) => ((value < below) === (whole < below) ? whole : Math.round(value * 100) / 100);

// Each loader's newest request: an answer to an older one (a poll sent before a filter changed,
// answered after it on a slow network) is dropped, not shown under the new filter's name.
const asked = {events: 0, trend: 0};

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// Runs step() every `every` ms for as long as the page is open. A failed call (the server
// restarting, the network away) is retried at twice the interval each time, up to a minute, with
// a notice that the figures are stale; step() returning false ends the loop. While the page is
// hidden (another tab, a minimised window, a locked phone) nothing is asked: a forgotten tab of a
// 16-camera site fetched 17 pictures and lists a second, all day; shown again, it asks at once.
const failing = new Set();
const SERVER_AWAY = "The server does not answer";  // the stale notice's words, unless a 503 said its own
function staleWhy(text) {
  const why = document.getElementById("stale-why");
  if (why.textContent !== text) why.textContent = text;  // (role=status: said once, not each poll)
}
const retries = new Map();  // step -> run it now if it is waiting out its back-off
const paused = new Set();   // the loops waiting for the page to be shown again
function keepPolling(step, every) {
  let delay = every, timer = null;
  async function run() {
    timer = null;
    if (document.hidden) { paused.add(run); return; }
    let again = true;
    try {
      again = await step() !== false;  // a loop that ends after a failure takes its notice with it
      delay = every;
      failing.delete(step);
    } catch (err) {
      if (err.message === "logged out") return;
      delay = Math.min(60000, delay * 2);
      failing.add(step);
    }
    document.getElementById("stale").hidden = failing.size === 0;
    if (failing.size === 0) staleWhy(SERVER_AWAY);  // said again as it was, for the next time
    document.getElementById("camera-grid").classList.toggle("stale", failing.size > 0);  // their state is old
    if (again) timer = setTimeout(run, delay);
  }
  retries.set(step, () => { if (timer !== null) { clearTimeout(timer); run(); } });
  run();
}
// Back on the network, or asked to: the failing loops try again now, not at the end of a back-off
// of up to a minute (the notice and the old figures stayed that long after the server was back).
function retryNow() { for (const step of failing) retries.get(step)(); }
window.addEventListener("online", retryNow);
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  const waiting = [...paused];
  paused.clear();
  for (const run of waiting) run();
});
document.getElementById("retry").addEventListener("click", retryNow);

async function checked(url) {
  const response = await api(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function showFailure(step) {  // a filter changed while the server is away: the same notice as polling
  return () => step().catch(() => { document.getElementById("stale").hidden = false; });
}

// The page's address keeps the chart's and the list's choices (chart.js, people.js).
function choicesInAddress(names) {  // {choice: parameter} -> {choice: the address's value, or null}
  const query = new URLSearchParams(location.search);
  return Object.fromEntries(Object.entries(names).map(([choice, name]) => [choice, query.get(name)]));
}
function keepInAddress(values) {  // {parameter: value}, the default ("") left out; the other parameters kept
  const query = new URLSearchParams(location.search);
  for (const [name, value] of Object.entries(values)) {
    if (value) query.set(name, value);
    else query.delete(name);
  }
  const search = query.toString();
  history.replaceState(history.state, "", location.pathname + (search ? "?" + search : "") + location.hash);
}
const offers = (select, value) => [...select.options].some((o) => o.value === value);

const byId = (id) => document.getElementById(id);

// What an admin's dialog (users.js, access-log.js) asks: the answer's JSON, or an Error in the
// server's own words, with the answer's `status` (users.js marks the field a 400 is about).
async function answered(url, options) {
  const response = await api(url, options);
  let answer = {};
  try { answer = await response.json(); } catch (err) { /* not JSON: the status says it */ }
  if (!response.ok) {
    throw Object.assign(new Error(answer.error || `the server answered ${response.status}`), {status: response.status});
  }
  return answer;
}

// A read that failed, in words: no answer in 15 s (a hung server, a dropped link), none at all, or
// the server's refusal.
function readFailure(err) {
  if (err.name === "TimeoutError") return `the server did not answer in ${READ_TIMEOUT / 1000} s`;
  if (err.name === "TypeError") return "the server did not answer";  // fetch's own failure: no connection
  return err.message;
}

// The camera's newest picture as an object URL, read as the page's other reads are (api(): an answer
// in 15 s, or a failure); null where the camera has no frame yet (404). An <img> given the URL
// waited as long as the server held it: the editor said "Reading…" for good.
async function readPicture(url) {
  const response = await api(url);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

// Started once every file of the page has run (DOMContentLoaded comes after the last <script>):
// users.js and two-step.js learn who is logged in from showAccount's event, which, asked before they
// were read, could come first and leave their buttons hidden for good.
document.addEventListener("DOMContentLoaded", () => {
  watchSideways(document);  // the dialogs' boxes too: their markup is in by now
  showAccount();
  keepPolling(pollCameras, 1000);
});
