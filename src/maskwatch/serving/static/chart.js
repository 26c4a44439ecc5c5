// "Compliance over time": the chart and its table, its camera, zone and period kept in the page's
// address.

let trendDrawn = null;  // the series last drawn and when it was read: drawn again at a new size
let pickedBar = null;  // the start of the bar last clicked or tapped: its row in the table is marked

function drawTrend(series, readAt = Date.now()) {
  // One bar per bucket with people in it, its height the corrected compliant share, a whisker over
  // it for the 95 % interval; the axis is 0-100 %. Red only when the whole interval is under 80 %.
  const chart = document.getElementById("trend-chart");
  chart.replaceChildren();
  trendDrawn = {series, readAt};
  // Drawn in the chart's own CSS pixels, so that its 11 px text is 11 px at every width: a 720-wide
  // drawing shrunk to a 320 px phone showed the axis in 4 px text.
  const [shownWidth, shownHeight] = trendSize(chart);
  chart.setAttribute("viewBox", `0 0 ${shownWidth} ${shownHeight}`);
  const left = 40, top = 10, width = shownWidth - 50, height = shownHeight - 50;
  chart.append(svgElement("rect", {x: left, y: top, width, height, fill: "none", stroke: "#ccc"}),
               svgElement("text", {x: 4, y: top + 10}, "100%"), svgElement("text", {x: 14, y: top + height}, "0%"));
  chart.dataset.buckets = series.buckets.length;
  // what a dashed outline means, in the caption while a bar has one (the bar's tooltip alone reached no finger nor keyboard)
  document.getElementById("trend-infrared-note").hidden = !series.buckets.some((b) => b.infrared);
  // Read once a minute: say when, so that a bar that has not moved is not taken for a stuck page.
  document.getElementById("trend-updated").textContent = `read at ${clockMinute(readAt)}, every minute`;
  // the period charted, as chosen: "last 24 hours, days or weeks" under a chart per day left the reader to pick
  document.getElementById("trend-period").textContent = `24 ${series.bucket}s`;
  // null: the server's local time, with no IANA name (as /v1/me's); its UTC offset, from a bucket's start, with it
  const offset = series.buckets.length ? series.buckets.at(-1).start.slice(19).replace(/^\.\d+/, "") : "";  // the newest (summer time)
  document.getElementById("trend-timezone").textContent = series.timezone ? series.timezone :
    "the server's local time" + (offset ? ", UTC" + (offset === "Z" ? "" : offset) : "");
  // Whole percents throughout, the share and its interval alike ("71%" stood beside "63.49-77.96%"):
  // the interval's ends rounded outwards (63.49 % is 63, 77.96 % is 78), so that the interval
  // shown still holds the truth. Red (and "under 80%") is the server's verdict, its top end under
  // 0.8 as the API gives it (ComplianceEstimate.below: the alerts' and MaskwatchComplianceLow's):
  // judged on the end rounded up to whole percents, a top end of 0.7997 read 80 and not under, where
  // the alert on the same people fired. A figure that rounding carries across 80 is shown as the
  // server has it (sided, as the alerts' list): "56-79.97%, under 80%", never "...-80%, under 80%".
  // The 1e-9: 0.98 * 100 is 98.00000000000001 in floating point.
  const percent = (share) => `${sided(share * 100, Math.round(share * 100), 80)}%`;
  const lowEnd = (b) => Math.floor(b.compliance_low * 100 + 1e-9);
  const highEnd = (b) => sided(b.compliance_high * 100, Math.ceil(b.compliance_high * 100 - 1e-9), 80);
  const interval = (b) => `${lowEnd(b)}-${highEnd(b)}%`;
  const under = (b) => b.compliance_high < 0.8;
  // People seen on grey (infrared) frames, judged by the night model, less sure than in colour: a
  // night camera's 95 % read as a day camera's. Marked (outlined, dashed, and said), not corrected.
  const seen = (b) => b.people + (b.unassessable ?? 0);
  const infrared = (b) => b.infrared ? `${b.infrared} of ${seen(b)}, read with care` : "0";
  // A bucket as the site's clock reads it: the start's own wall-clock time (the API gives it with the
  // site's offset), in the table and in a bar's tooltip alike (which showed the raw ISO time).
  const wall = (start) => series.bucket === "hour" ? start.slice(0, 16).replace("T", " ") : start.slice(0, 10);
  // The hour the clocks go back over is two buckets of one wall-clock time: each says its UTC offset
  // ("2026-10-25 02:00 (UTC+02:00)", then "(UTC+01:00)"), where two rows and tooltips read the same.
  const walls = series.buckets.map((b) => wall(b.start));
  const when = (start) => walls.indexOf(wall(start)) === walls.lastIndexOf(wall(start)) ? wall(start) :
    `${wall(start)} (UTC${start.slice(19).replace(/^\.\d+/, "").replace("Z", "+00:00")})`;
  // The figures as a table: the text alternative of the bars (whose titles neither a screen reader
  // inside role=img, nor a finger, nor the keyboard reaches), and the only readable form on a phone.
  // "People" are those judged: the unassessable (too brief or too small to judge) are a column apart,
  // in no share (the demo's 141 judged stood beside some 100 unassessable, said nowhere).
  const rows = series.buckets.map((b) => {
    const row = document.createElement("tr");
    const cells = [when(b.start), b.compliance === null ? "— (only unassessable people)" : percent(b.compliance),
      b.compliance === null ? "—" : interval(b) + (under(b) ? ", under 80%" : ""), b.people, b.unassessable ?? 0,
      b.compliance === null ? "—" : percent(b.observed_share), infrared(b)];
    for (const text of cells) row.append(Object.assign(document.createElement("td"), {textContent: text}));
    row.dataset.start = b.start;
    if (b.start === pickedBar) row.setAttribute("aria-current", "true");  // still marked when read again
    return row;
  });
  if (!rows.length) {
    rows.push(document.createElement("tr"));
    rows[0].append(Object.assign(document.createElement("td"), {colSpan: 7, textContent: "no people counted yet"}));
  }
  const focused = document.activeElement.closest("#trend-table tbody tr")?.dataset.start;  // a bar's row (below)
  document.querySelector("#trend-table tbody").replaceChildren(...rows);
  const refocus = rows.find((row) => focused && row.dataset.start === focused);  // read again: the focus stays on it
  if (refocus) { refocus.tabIndex = -1; refocus.focus({preventScroll: true}); }
  if (!series.buckets.length) {
    chart.append(svgElement("text", {x: left + 10, y: top + height / 2, class: "empty"}, "no people counted yet"));
    return;
  }
  chart.append(svgElement("line", {x1: left, x2: left + width, y1: top + 0.2 * height, y2: top + 0.2 * height,
                                   class: "threshold"}),
               svgElement("text", {x: 12, y: top + 0.2 * height + 4}, "80%"));
  // Bars stand where their time is, from the window's start to now: a bucket without people is a gap.
  const length = {hour: 3600e3, day: 86400e3, week: 7 * 86400e3}[series.bucket];
  const first = series.buckets[0].start, last = series.buckets[series.buckets.length - 1].start;
  const t0 = Math.min(Date.parse(series.since), Date.parse(first));
  const t1 = Math.max(Date.now(), Date.parse(last) + length);
  const slot = width * length / (t1 - t0);
  series.buckets.forEach((b, i) => {
    if (b.compliance === null) return;  // only undecided people in this bucket
    const x = left + width * (Date.parse(b.start) - t0) / (t1 - t0);
    // A bucket ends where the next begins: Lord Howe's hour the clocks skip half of is half an hour
    // long, and its bar, a whole slot wide, covered most of the next one's.
    const next = series.buckets[i + 1];
    const room = next ? Math.min(slot, width * (Date.parse(next.start) - Date.parse(b.start)) / (t1 - t0)) : slot;
    const h = Math.max(1, b.compliance * height);
    const bar = svgElement("rect", {x: x + room * 0.1, y: top + height - h, width: room * 0.8, height: h,
                                    class: "bar" + (under(b) ? " low" : "") + (b.infrared ? " infrared" : ""),
                                    "data-start": b.start, "data-compliance": b.compliance,
                                    ...(b.infrared ? {"data-infrared": b.infrared} : {})});
    bar.append(svgElement("title", {}, `${when(b.start)}: ${percent(b.compliance)} (95% interval ` +
                          `${interval(b)}) of ${b.people} judged` +
                          (b.unassessable ? ` (${b.unassessable} unassessable, not in the share)` : "") +
                          `; ${percent(b.observed_share)} as labelled, before correction` +
                          (b.infrared ? `; ${b.infrared} of ${seen(b)} seen on grey (infrared) frames: ` +
                           "judged by the night model, read the share with care" : "")));
    const middle = x + 0.5 * room, cap = Math.min(6, room * 0.2);
    const yLow = top + height - b.compliance_low * height, yHigh = top + height - b.compliance_high * height;
    const whisker = svgElement("g", {class: "interval", "data-start": b.start, "data-low": b.compliance_low,
                                     "data-high": b.compliance_high});
    whisker.append(svgElement("line", {x1: middle, x2: middle, y1: yLow, y2: yHigh}),
                   svgElement("line", {x1: middle - cap, x2: middle + cap, y1: yLow, y2: yLow}),
                   svgElement("line", {x1: middle - cap, x2: middle + cap, y1: yHigh, y2: yHigh}));
    chart.append(bar, whisker);
  });
  // The first bar's start under it, with its year as the table's ("12-07 02:00" read as 12 July where
  // days come first), kept inside the chart and clear of the right-hand label, as measured.
  const firstX = left + width * (Date.parse(first) - t0) / (t1 - t0) + slot / 2;
  const firstLabel = svgElement("text", {y: top + height + 16, "text-anchor": "middle"}, wall(first));
  const endLabel = svgElement("text", {x: left + width, y: top + height + 16, "text-anchor": "end"},
                              t1 > Date.now() + 1000 ? `end of this ${series.bucket}` : "now");
  chart.append(firstLabel, endLabel);
  const half = firstLabel.getComputedTextLength() / 2, end = endLabel.getComputedTextLength();
  firstLabel.setAttribute("x", Math.max(left + half, Math.min(firstX, left + width - end - 8 - half)));
  const latest = series.buckets.filter((b) => b.compliance !== null).pop();
  const where = series.zone ? ` in zone ${series.zone}` : "";
  chart.setAttribute("aria-label", latest ? `share of people wearing a mask${where}; latest ${series.bucket}: ` +
    `${percent(latest.compliance)} (95% interval ${interval(latest)}) ` +
    `of ${latest.people} people judged` : `share of people wearing a mask${where}: no people counted yet`);
}

// A bar's figures were in its tooltip alone, which neither a finger nor the keyboard brings up: a click
// or a tap on a bar (or its whisker) opens the table under the chart at its row, marked and focused
// (the keyboard reaches the table by its summary).
document.getElementById("trend-chart").addEventListener("click", (event) => {
  const start = event.target.closest("[data-start]")?.dataset.start;
  if (!start) return;
  pickedBar = start;
  const table = document.getElementById("trend-table");
  table.closest("details").open = true;
  for (const row of table.tBodies[0].rows) {
    if (row.dataset.start !== start) { row.removeAttribute("aria-current"); continue; }
    row.setAttribute("aria-current", "true");
    row.tabIndex = -1;
    row.focus();  // scrolled into view
  }
});

// The chart's size on screen, inside its border (720 x 240, the desktop's, while it is not laid out).
function trendSize(chart) {
  return chart.clientWidth > 0 && chart.clientHeight > 0 ? [chart.clientWidth, chart.clientHeight] : [720, 240];
}
new ResizeObserver(() => {  // a phone turned, a window resized: drawn again in the new pixels
  const chart = document.getElementById("trend-chart");
  if (trendDrawn && chart.getAttribute("viewBox") !== `0 0 ${trendSize(chart).join(" ")}`) {
    drawTrend(trendDrawn.series, trendDrawn.readAt);
  }
}).observe(document.getElementById("trend-chart"));

async function loadTrend() {
  const params = new URLSearchParams({bucket: document.getElementById("trend-bucket").value});
  const camera = document.getElementById("trend-camera").value, zone = document.getElementById("trend-zone").value;
  if (camera) params.set("camera", camera);
  if (zone) params.set("zone", zone);
  const mine = ++asked.trend;
  const series = await checked("v1/compliance?" + params);
  if (mine !== asked.trend) return;
  drawTrend(series);
  zonesCounted = {camera: series.camera ?? "", bucket: series.bucket, zones: series.zones ?? [], asked: series.zone};
  fillZoneChoices();
  if (takeWantedChart(false)) showFailure(loadTrend)();  // the address named a zone only its history has
}

// The chart's choices are kept in the page's address (?chart_camera=door&chart_zone=queue&chart_bucket=day):
// a reload, a bookmark or a link sent on shows the same chart. Read once at load; the camera and
// zone are taken once the server has named them (a retired camera's with its list), then dropped:
// a choice made here wins, and one the server does not name (gone, or another viewer's) is "all".
const CHART_CHOICES = {camera: "chart_camera", zone: "chart_zone", bucket: "chart_bucket"};
let wantedChart = choicesInAddress(CHART_CHOICES);
if (offers(document.getElementById("trend-bucket"), wantedChart.bucket)) {
  document.getElementById("trend-bucket").value = wantedChart.bucket;
}
function keepChartChoices() {
  keepInAddress(Object.fromEntries(Object.entries(CHART_CHOICES).map(([choice, name]) => {
    const value = document.getElementById(`trend-${choice}`).value;
    return [name, choice === "bucket" && value === "hour" ? "" : value];  // hour: the default
  })));
}
// The wanted camera, then its zone, chosen where the server has named them. `final`: no more
// cameras are coming (the retired ones are read); false: a wanted camera not named yet is waited for.
// Whether the chart's choice changed.
function takeWantedChart(final) {
  const cameraSelect = document.getElementById("trend-camera"), zoneSelect = document.getElementById("trend-zone");
  if (!wantedChart.camera && !wantedChart.zone) return false;
  const before = cameraSelect.value + "/" + zoneSelect.value;
  if (wantedChart.camera && offers(cameraSelect, wantedChart.camera)) {
    cameraSelect.value = wantedChart.camera;
    wantedChart.camera = null;
  }
  if (wantedChart.camera && !final) return false;
  wantedChart.camera = null;
  fillZoneChoices();
  if (offers(zoneSelect, wantedChart.zone)) zoneSelect.value = wantedChart.zone;
  else if (wantedChart.zone && !countedRead()) {  // a zone only the history has, maybe: named by the chart's answer
    return cameraSelect.value + "/" + zoneSelect.value !== before;
  }
  wantedChart = {};
  keepChartChoices();  // the address says what is shown (a camera or zone it named and the server did not: gone)
  return cameraSelect.value + "/" + zoneSelect.value !== before;
}

// The zone choice: the chosen camera's zones, or every zone of the caller's cameras for "all",
// as /v1/cameras names them (the config's), then those the chart's answer names with people in its
// period that the config has not (renamed or removed from it, a retired camera's: the API and
// report.csv take them, the choice did not offer them), marked so; the zone charted stays offered.
// The zone chosen stays where the new camera has it too, else it is "all".
const cameraZones = {};
let zonesCounted = {camera: null, bucket: null, zones: [], asked: null};  // the chart's last answer's
const countedRead = () => zonesCounted.camera === document.getElementById("trend-camera").value &&
  zonesCounted.bucket === document.getElementById("trend-bucket").value;
function fillZoneChoices() {
  const camera = document.getElementById("trend-camera").value, select = document.getElementById("trend-zone");
  const zones = camera ? cameraZones[camera] ?? [] : [...new Set(Object.values(cameraZones).flat())].sort();
  const counted = countedRead() ? [...zonesCounted.zones, ...(zonesCounted.asked ? [zonesCounted.asked] : [])] : [];
  const gone = [...new Set(counted)].filter((zone) => !zones.includes(zone)).sort();
  const chosen = select.value, choices = JSON.stringify([zones, gone]);
  if (select.dataset.choices === choices) return;  // unchanged: a list open on a phone is not rebuilt under the finger
  select.dataset.choices = choices;
  select.replaceChildren(new Option("all", ""), ...zones.map((zone) => new Option(zone, zone)),
                         ...gone.map((zone) => new Option(`${zone} (no longer in the config)`, zone)));
  select.value = zones.includes(chosen) || gone.includes(chosen) ? chosen : "";
}

function chartChosen(event) {  // the user's choice: it wins over the address's
  wantedChart = {};
  if (event.target.id === "trend-camera") fillZoneChoices();
  keepChartChoices();
  return showFailure(loadTrend)();
}
for (const id of ["trend-camera", "trend-zone", "trend-bucket"]) document.getElementById(id).addEventListener("change", chartChosen);
