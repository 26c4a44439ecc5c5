// "People seen": the site's latest people and their blurred snapshots, the list's camera and
// label kept in the page's address.

let lastEvents = null;

// "How sure": the probability in whole percents, cut (0.996 is 99 %, not 100 %), from the store's 4
// decimals: 0.57 * 100 is 56.99999999999999 in floating point, and a plain floor said "56 %".
const howSure = (probability) => Math.floor(Math.round(probability * 1e4) / 100);

// What the mark means is said under the table (#events-infrared-note) while one is listed: in its
// title it was out of reach of a finger and the keyboard, and left unsaid by a screen reader's table reading.
const INFRARED_MARK = ` <span class="infrared">(infrared)</span>`;

async function loadEvents() {
  const mine = ++asked.events;
  const params = new URLSearchParams({limit: "50"});
  const camera = document.getElementById("filter-camera").value;
  const label = document.getElementById("filter-label").value;
  if (camera) params.set("camera", camera);
  if (label) params.set("label", label);
  // The export takes the list's filters: every person they find, not the 50 shown.
  const exported = new URLSearchParams([...params].filter(([key]) => key !== "limit"));
  document.getElementById("events-csv-link").href = "v1/events.csv" + (exported.toString() ? "?" + exported : "");
  const {events} = await checked("v1/events?" + params);
  if (mine !== asked.events) return;
  // Rebuilt only when something changed: a screen reader reading the table lost its place every
  // 5 s, and a sighted reader saw the thumbnails blink.
  const shown = JSON.stringify([camera, label, events]);
  if (shown === lastEvents) return;
  lastEvents = shown;
  if (!events.length) {  // an empty table read as a page still loading
    const row = document.createElement("tr");
    row.className = "empty";
    row.append(Object.assign(document.createElement("td"), {colSpan: 6,
      textContent: camera || label ? "Nobody seen matches these filters." : "Nobody seen yet."}));
    document.getElementById("event-list").replaceChildren(row);
    document.getElementById("events-infrared-note").hidden = true;
    stackRows(document.getElementById("event-table"));
    return;
  }
  // Times in the page's clock, cameras by name; an unassessable person has no probability; one seen
  // on grey (infrared) frames is said so beside the label, which the night model judges there. A
  // snapshot is read beside the page (as its other reads): the answer's URL carries the server's
  // root_path, which a screen's token-adding proxy that maps its / to the prefix does not mirror.
  const beside = (url) => url.slice(url.indexOf("v1/snapshots/"));
  document.getElementById("event-list").innerHTML = events.map((e) => `
    <tr class="event" data-camera="${escapeHtml(e.camera)}" data-label="${e.label}">
      <td>${escapeHtml(clockTime(e.last_seen))}</td>
      <td>${escapeHtml(cameraNames[e.camera] ?? e.camera)}</td>
      <td>${escapeHtml(e.zone || "—")}</td><td class="${e.label}">${LABELS[e.label]}${e.infrared ? INFRARED_MARK : ""}</td>
      <td>${e.label === "unassessable" ? "—" : `${howSure(e.probability)} %`}</td>
      <td${e.snapshot ? ` data-snapshot="${escapeHtml(beside(e.snapshot))}"` : ""}></td></tr>`).join("");
  document.getElementById("events-infrared-note").hidden = !events.some((e) => e.infrared);
  stackRows(document.getElementById("event-table"));  // each value after its heading on a phone
  showSnapshots();
}

// The people's blurred snapshots, read as a card's picture (readPicture: an answer in 15 s, or a
// failure), two at a time (the browser's six connections to the server stay free for the polls),
// each read once while it is listed. An <img> given the URL waited as long as the server held it:
// a snapshot that hung was a broken picture for good. Failed: "no picture", why in its title; the
// next change of the list tries again.
const snapshots = new Map();  // path -> its reading (a promise of an object URL; null: none kept)
const snapshotQueue = [];
let snapshotReads = 0;
function readSnapshot(path) {  // one no longer listed when its turn comes is not read
  const reading = new Promise((resolve, reject) => snapshotQueue.push(
    () => (snapshots.has(path) ? readPicture(path) : Promise.resolve(null)).then(resolve, reject)));
  snapshots.set(path, reading);
  nextSnapshots();
  return reading;
}
function nextSnapshots() {
  while (snapshotReads < 2 && snapshotQueue.length) {
    snapshotReads++;
    snapshotQueue.shift()().finally(() => { snapshotReads--; nextSnapshots(); });
  }
}
function showSnapshots() {
  const cells = [...document.querySelectorAll("#event-list [data-snapshot]")];
  const listed = new Set(cells.map((cell) => cell.dataset.snapshot));
  for (const [path, reading] of snapshots) {
    if (listed.has(path)) continue;
    snapshots.delete(path);
    reading.then((url) => url && URL.revokeObjectURL(url), () => {});
  }
  for (const cell of cells) {
    const path = cell.dataset.snapshot;
    const reading = snapshots.get(path) ?? readSnapshot(path);
    reading.then((url) => {
      if (url === null) return cell.replaceChildren(noSnapshot("not kept"));
      cell.replaceChildren(Object.assign(document.createElement("img"), {src: url, alt: "blurred snapshot"}));
    }, (err) => {
      if (snapshots.get(path) === reading) snapshots.delete(path);
      if (err.message !== "logged out") cell.replaceChildren(noSnapshot(readFailure(err)));
    });
  }
}
// "no picture (not kept)", why shown beside it to everyone: in its title it was the span's description,
// which table reading leaves unsaid, and a tooltip that neither a finger nor the keyboard brings up.
function noSnapshot(why) {
  const words = Object.assign(document.createElement("span"), {className: "nosnap", textContent: "no picture"});
  words.append(Object.assign(document.createElement("span"), {className: "why", textContent: ` (${why})`}));
  return words;
}

// The people list's camera and label likewise (?people_camera=door&people_label=without_mask): the
// label at once (the page has its choices), the camera once the server names it; a value it does
// not offer is "all", and a choice made here wins.
const PEOPLE_CHOICES = {camera: "people_camera", label: "people_label"};
let wantedPeople = choicesInAddress(PEOPLE_CHOICES);
if (offers(document.getElementById("filter-label"), wantedPeople.label)) {
  document.getElementById("filter-label").value = wantedPeople.label;
}
function keepPeopleChoices() {
  keepInAddress(Object.fromEntries(Object.entries(PEOPLE_CHOICES).map(
    ([choice, name]) => [name, document.getElementById(`filter-${choice}`).value])));
}
// The wanted camera chosen where the server has named it (`final` as takeWantedChart's); whether the
// list's choice changed.
function takeWantedPeople(final) {
  const select = document.getElementById("filter-camera");
  if (wantedPeople === null) return false;
  const before = select.value;
  if (wantedPeople.camera && offers(select, wantedPeople.camera)) select.value = wantedPeople.camera;
  else if (wantedPeople.camera && !final) return false;
  wantedPeople = null;
  keepPeopleChoices();  // the address says what is listed
  return select.value !== before;
}
function peopleChosen() {  // the user's choice: it wins over the address's
  wantedPeople = null;
  keepPeopleChoices();
  return showFailure(loadEvents)();
}
document.getElementById("filter-camera").addEventListener("change", peopleChosen);
document.getElementById("filter-label").addEventListener("change", peopleChosen);
