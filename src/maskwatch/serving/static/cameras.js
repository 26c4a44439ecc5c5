// The cameras' cards (state, today's counts, newest picture), polled every second; the cameras no
// longer running offered in the chart's and the list's choices.

function cameraCard(camera) {
  let card = document.querySelector(`.camera[data-camera="${CSS.escape(camera.id)}"]`);
  if (!card) {
    card = document.createElement("figure");
    card.className = "camera";
    card.dataset.camera = camera.id;
    card.innerHTML = `<img alt="${escapeHtml(camera.name)}" width="320" hidden><div class="nofeed">no frame yet</div>
      <figcaption><span class="name">${escapeHtml(camera.name)}</span><span class="state"></span></figcaption>
      <p class="night" hidden>infrared now</p><p class="counts"></p><small class="detail"></small><small class="todo"></small>
      <p><button type="button" class="draw-zones">Draw zones<span class="sr-only"> of ${escapeHtml(camera.name)}</span></button></p>`;
    // An admin's only: the editor gives YAML for site.yaml, which a viewer cannot change (a clinic's
    // supervisor was offered it on every card, beside "tell whoever runs the site").
    if (accountRole === "admin") {
      card.querySelector(".draw-zones").addEventListener("click", () => openZoneEditor(camera.id, camera.name));
    } else {
      card.querySelector(".draw-zones").parentElement.remove();
    }
    document.getElementById("camera-grid").appendChild(card);
  }
  return card;
}

const cameraNames = {};

// A camera gone offline or back is said in a polite live region (#camera-news), once a change: a
// card's state changed silently, and a region round the cards would read their fps every second.
// Their states as the poll before saw them; a camera seen first (the page just opened) is not news.
const cameraOnline = new Map();
function sayCameraChanges(cameras) {
  const changes = [];
  for (const camera of cameras) {
    const before = cameraOnline.get(camera.id);
    if (before !== undefined && before !== camera.connected) {
      changes.push(`${camera.name} ${camera.connected ? "is back online" : "went offline"}`);
    }
    cameraOnline.set(camera.id, camera.connected);
  }
  // with the time: one read later, in the region's browse, says when it happened
  if (changes.length) document.getElementById("camera-news").textContent = `${clockMinute(Date.now())}: ${changes.join("; ")}.`;
}

// Cameras no longer running whose people are still stored (removed from the config, or switched
// off): offered in both selects under their own heading, so last month's figures of a camera
// moved or retired can still be read. Asked once: only a restart with another config changes them.
async function addRetiredCameras() {
  const response = await api("v1/cameras/retired");
  if (response.status === 404) return false;  // not a site, as for /v1/cameras
  if (!response.ok) throw new Error(`/v1/cameras/retired: ${response.status}`);
  const {cameras} = await response.json();
  const selects = cameras.length ? [document.getElementById("filter-camera"), document.getElementById("trend-camera")] : [];
  for (const select of selects) {  // none retired: no empty heading
    const group = document.createElement("optgroup");
    group.label = "not running (history kept)";
    for (const camera of cameras) {
      const option = new Option(`${camera.id} (${camera.disabled ? "switched off" : "retired"})`, camera.id);
      option.dataset.retired = "true";
      group.append(option);
    }
    select.append(group);
  }
  if (takeWantedChart(true)) showFailure(loadTrend)();  // the address named a retired camera
  if (takeWantedPeople(true)) showFailure(loadEvents)();
  return false;
}

let camerasShown = null;  // the cameras' ids and names the page was built with
async function pollCameras() {
  await clockRead;  // the cards' and the lists' times in the site's clock from the first
  const response = await api("v1/cameras");
  if (response.status === 404) return false;  // not a site: `maskwatch serve` without --config
  if (!response.ok) throw new Error(`/v1/cameras: ${response.status}`);
  const cameras = await response.json();
  const shown = JSON.stringify(cameras.map((camera) => [camera.id, camera.name]));
  if (camerasShown === null) camerasShown = shown;
  else if (shown !== camerasShown) reloadAsServed("the cameras changed");  // dashboard.js says why
  for (const camera of cameras) {
    cameraNames[camera.id] = camera.name;
    cameraZones[camera.id] = camera.zones;
  }
  if (document.getElementById("cameras").hidden) {
    document.getElementById("cameras").hidden = false;
    document.getElementById("events").hidden = false;
    document.getElementById("trend").hidden = false;
    document.getElementById("alerts").hidden = false;
    const select = document.getElementById("filter-camera");
    const trendSelect = document.getElementById("trend-camera");
    for (const camera of cameras) {
      select.add(new Option(camera.name, camera.id));
      trendSelect.add(new Option(camera.name, camera.id));
    }
    fillZoneChoices();
    takeWantedChart(false);
    takeWantedPeople(false);  // before the list's first read
    keepPolling(addRetiredCameras, 5000);
    keepPolling(loadEvents, 5000);
    keepPolling(loadTrend, 60000);
    keepPolling(loadAlerts, 30000);  // the rules are checked every 30 s
    if (!cameras.length) {  // a viewer whose cameras are all gone from the config saw an empty heading
      document.getElementById("camera-grid").textContent = "No camera to show to this account.";
    }
  }
  sayCameraChanges(cameras);
  for (const camera of cameras) {
    const card = cameraCard(camera);
    card.dataset.connected = camera.connected;
    // The rate checked is the one set in the config (its fps); the other is what the camera sends.
    // An admin's figures: to a viewer (a clinic's supervisor) they were an engineer's words, and to an
    // admin (a store's manager) "3 fps analysed (stream 25 fps)" was too: said in words ("1 frame", not "1 frames").
    card.querySelector(".state").textContent = !camera.connected ? "offline" : accountRole !== "admin" ? "online"
      : `online, checks ${camera.fps_target} frame${camera.fps_target === 1 ? "" : "s"} a second (the camera sends ${camera.fps})`;
    // A camera kept up through a stall (its offline_after) says why no new frame comes: its card
    // said "online" over a frozen picture, and nothing more, for up to an hour.
    card.querySelector(".detail").textContent = camera.connected
      ? (camera.last_error && camera.last_frame_at
        ? `no frame since ${clockTime(camera.last_frame_at)}, reconnecting: ${camera.last_error}` : "")
      : offlineSince(camera) + (camera.last_error || "connecting") +
        (camera.last_frame_at ? `; the picture is from ${clockTime(camera.last_frame_at)}` : "");
    card.querySelector(".todo").textContent = camera.connected ? "" : whatToDo(camera);
    // Its frames grey (infrared) now, as the log's turn says it: only today's count said so, once people left
    // (what it means: #cameras-infrared-note, below the cards)
    card.querySelector(".night").hidden = !camera.grey_frames;
    const today = camera.today;
    card.querySelector(".counts").innerHTML = today === null ? "today's counts: the database cannot be read" :
      // the labels' words as the list's and the photo's ("incorrect: 3" read as a count gone wrong)
      `<span class="today">today:</span>` + Object.keys(LABELS).map((c) =>
        `<span class="${c}" data-class="${c}">${LABELS[c]}: <b>${today[c] ?? 0}</b></span>`).join("") +
      // a night camera's: its people seen on grey frames, whose "mask" is often a bare face (docs/site.md)
      // (what it means: #cameras-infrared-note, below the cards; a tooltip here reached no finger nor keyboard)
      (today.infrared ? `<span class="infrared">infrared: <b>${today.infrared}</b></span>` : "") +
      // beside the figures: a camera never connected showed "mask: 0, no mask: 0", read as nobody came
      // in at that door, and one down since the morning its morning's counts, read as the day's
      (camera.connected ? "" : `<span class="stopped">(not counting while offline)</span>`);
    if (camera.analysed > 0 && camera.connected) readCardPicture(card, camera.id);  // an offline camera's last picture stays, dimmed
  }
  document.getElementById("cameras-infrared-note").hidden =
    !cameras.some((camera) => camera.today?.infrared || camera.grey_frames);
}

// Since when an offline camera counts as down, on the site's clock, and for how long (on the server's
// clock, as the session's end: account.js's serverAhead): "offline since 07:12 (2 h 5 min): ", or
// "not connected since the site started at 06:58: " where no frame came since. A card said
// "offline" and the raw error only: down since the morning and never connected read alike.
function offlineSince(camera) {
  if (!camera.offline_since) return "";
  const since = Date.parse(camera.offline_since), now = Date.now() + serverAhead;
  const day = (at) => { const p = clockParts(at); return `${p.year}-${p.month}-${p.day}`; };
  const when = day(since) === day(now) ? clockMinute(since) : `${day(since)} ${clockMinute(since)}`;
  if (!camera.last_frame_at) return `not connected since the site started at ${when}: `;
  const minutes = Math.max(0, Math.floor((now - since) / 60000));
  const hours = Math.floor(minutes / 60), days = Math.floor(hours / 24);
  const lasted = days ? `${days} d ${hours % 24} h` : hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
  return `offline since ${when} (${lasted}): `;
}

// An offline card's one line of what to do, by role: a viewer can only pass it on; an admin is
// pointed at the camera's problem as `run --probe` says it (the stream read and the error above),
// with no second diagnosis of its own. The stream read is the substream where there is one: the
// line named `source`, which is then never opened, beside an error about the substream.
function whatToDo(camera) {
  if (accountRole !== "admin") return "What to do: tell whoever runs the site.";
  const read = camera.detect_source ? `${camera.detect_source} (its detect_source)` : camera.source;
  return `What to do: mend what the error above says at ${read}; \`maskwatch run --probe\` tries it again.`;
}

// A card's newest picture, read as the zone editor's (readPicture: an answer in 15 s, or a failure),
// one request a card at a time, not awaited by the poll. An <img> given the URL waited as long as
// the server held it: a camera whose frame hung showed nothing for good, and each poll (a second)
// sent another. Failed: "no picture" and why, the picture before gone; the next poll tries again.
const readingCards = new WeakSet();
async function readCardPicture(card, cameraId) {
  if (readingCards.has(card)) return;
  readingCards.add(card);
  const img = card.querySelector("img"), nofeed = card.querySelector(".nofeed");
  let url = null, problem = "no frame yet";
  try {
    url = await readPicture(`v1/cameras/${encodeURIComponent(cameraId)}/frame.jpg?t=${Date.now()}`);
  } catch (err) {
    if (err.message === "logged out") return;  // on its way to the login page
    problem = `no picture: ${readFailure(err)}`;
  } finally {
    readingCards.delete(card);
  }
  if (url !== null) {
    const before = img.src;
    img.src = url;  // the picture before stays shown until this one is decoded
    if (before.startsWith("blob:")) URL.revokeObjectURL(before);
  }
  img.hidden = url === null;
  nofeed.hidden = url !== null;
  nofeed.textContent = problem;
}
