// "Compliance alerts today" (GET /v1/alerts): which camera and zone fell under its rule, when, by how
// much, and whether it came back since. The alerts went to webhooks, messages, MQTT or the log only:
// a supervisor with the page alone never learnt of one.

// Whole percents (the interval's ends outwards, as the chart's), but never across the rule's
// threshold (dashboard.js's sided): the whole interval under 80 means a top end of 79.4 at most, which,
// rounded up, read "95 % interval 70–80 %, under the 80 % set", and 79.6 "80 % wearing a mask, under
// 80 %". Such a figure is given as the server has it (2 decimals).
const percent = (value, below) => `${sided(value, Math.round(value), below)} %`;
const range = (low, high, below) =>
  `${sided(low, Math.floor(low), below)}–${sided(high, Math.ceil(high), below)} %`;

// Those in the window too briefly or too small in view to judge: in no share, said apart as the
// chart's table and the reports say them (the line had no word of them).
const notJudged = (alert) => alert.unassessable ? ` (${alert.unassessable} more not judged)` : "";

// What a face of a grey frame is worth: maskwatch.data.grey.NIGHT_WORDS, word for word (tests/test_alerts_page.py).
const NIGHT_WORDS = "judged by the night model, less sure than in colour (on grey copies of held-out photos 15 of 143 " +
  "bare faces passed as masked, 1 in colour, 67 with glare; on dark, noisy copies many masked faces read bare): read a marked " +
  "share with care";

// Those seen on grey (infrared) frames, judged by the night model: in the words of its webhook, message
// and log line (site/infrared.py's NIGHT_WORDS; the list said nothing of them).
const onGrey = (alert) => alert.infrared ? ` ${alert.infrared} of ${alert.seen} people seen on grey (infrared) ` +
  `frames, ${NIGHT_WORDS}.` : "";

// How the camera and zone stand now over the rule's window, in words (the state's class colours it).
function alertNow(alert) {
  const now = alert.now, figures = now.compliance === null ? "" :
    `${percent(now.compliance, alert.below)} wearing a mask (${range(now.compliance_low, now.compliance_high, alert.below)})`;
  const last = `over the last ${alert.minutes} min`;
  return {
    under: `still under ${alert.below} %: ${figures} ${last}`,
    recovered: `back to ${alert.below} % or more: ${figures} ${last}`,
    unclear: `not clear yet: ${figures} ${last}`,
    too_few: `too few people ${last} to tell (${now.people})`,
  }[now.state];
}

// An alert that fired since the last read is said once in a polite live region: the list is not
// one (it is rebuilt as the figures move), and a screen reader's user learnt of a new one only by
// reading the list again. Those listed at the page's first read are not news.
let alertsSeen = null;  // each alert's rule, camera and time
function sayNewAlerts(alerts) {
  const key = (a) => `${a.rule} ${a.camera} ${a.at}`;
  const fresh = alertsSeen === null ? [] : alerts.filter((a) => !alertsSeen.has(key(a)));
  alertsSeen = new Set(alerts.map(key));
  if (fresh.length) {
    document.getElementById("alert-news").textContent = "Compliance alert: " + fresh.map((a) =>
      `${clockMinute(a.at)} ${cameraNames[a.camera] ?? a.camera}${a.zone ? `, zone ${a.zone}` : ""}, ` +
      `${percent(a.compliance, a.below)} wearing a mask, under ${a.below} %`).join("; ") + ".";
  }
}

let lastAlerts = null;
async function loadAlerts() {
  const answer = await checked("v1/alerts");
  sayNewAlerts(answer.alerts);
  const shown = JSON.stringify(answer);
  if (shown === lastAlerts) return;  // unchanged: not rebuilt under a screen reader
  lastAlerts = shown;
  // No rule now, and yet the alerts of rules removed since (they are stored, and outlive a restart).
  const setUp = accountRole === "admin" ? " (alerts.compliance in site.yaml)" : "";
  document.getElementById("alerts-since").textContent = !answer.rules
    ? (answer.alerts.length ? `No compliance alerts are set up for your cameras now${setUp}; these fired earlier today.`
      : `No compliance alerts are set up for your cameras${setUp}.`)
    : answer.since_start ? `Since ${clockMinute(answer.since)}, when the site began to keep them (alerts before the upgrade are not listed).`
    : answer.cut ? `Since ${clockMinute(answer.since)}: more alerts fired today than the list holds (1000), or some could not be stored.` : "";
  const list = document.getElementById("alert-list");
  if (!answer.alerts.length) {
    list.innerHTML = answer.rules ? `<li class="empty">No compliance alert today.</li>` : "";
    return;
  }
  // A rule fires again each cooldown while it stays under: one line per rule and camera, its newest
  // alert's figures, since when it fired (the first today) and how often. A rule is its figures as
  // well as its index: the alerts are kept across restarts, and the file may have changed rule 0 since.
  const groups = new Map();
  for (const a of answer.alerts) {
    const key = JSON.stringify([a.rule, a.camera, a.zone, a.below, a.minutes]);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  // The camera's name in <bdi>: a right-to-left one ("קופה 2") took the figure after it into its run,
  // shown "12:58 7 :2 קופה % wearing a mask".
  list.innerHTML = [...groups.values()].map((fired) => {
    const a = fired[0], first = fired.at(-1);
    // Counted since the list's start: "today" where the day's first were let go (answer.cut), or
    // fired before the upgrade that began the list (answer.since_start), was too few.
    const over = answer.cut || answer.since_start ? `since ${escapeHtml(clockMinute(answer.since))}` : "today";
    const again = fired.length > 1 ? ` Fired ${fired.length} times ${over}, first at ${escapeHtml(clockMinute(first.at))}.` : "";
    return `
    <li class="alert" data-camera="${escapeHtml(a.camera)}" data-state="${a.now.state}">
      <b>${escapeHtml(clockMinute(a.at))} <bdi>${escapeHtml(cameraNames[a.camera] ?? a.camera)}</bdi>${a.zone ? `, zone ${escapeHtml(a.zone)}` : ""}</b>:
      ${percent(a.compliance, a.below)} wearing a mask (95&nbsp;% interval ${range(a.compliance_low, a.compliance_high, a.below)})
      over the ${a.minutes} min before, under the ${a.below} % set; ${a.with_mask} of ${a.people} people counted with a mask${notJudged(a)}.${onGrey(a)}${again}
      <span class="now">Now: ${escapeHtml(alertNow(a))}.</span></li>`;
  }).join("");
}
