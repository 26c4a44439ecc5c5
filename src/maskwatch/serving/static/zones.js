// ---- The zone editor: a camera's zones and motion masks drawn on its picture, as the YAML to paste
// into site.yaml (the file stays the one source of truth: the server writes nothing). Points are
// shares (0-1) of the picture's own width and height, whatever size it is shown at.
// text: ok, checking, bad, reading (the camera's zones and picture are on their way), or unread
// (they could not be read: nothing to draw on).
// cursor: the keyboard's cross on the picture, shown while the picture has the focus.
const editor = {camera: null, name: "", opened: 0, pictureUrl: null, width: 640, height: 480, zones: new Map(), masks: [], motion: new Map(),
                motionGiven: false, drawing: [], text: "ok", checks: 0, timer: null, cursor: [0.5, 0.5],
                cursorShown: false, running: null, runningText: null, history: []};

const round3 = (v) => Math.round(v * 1000) / 1000;
const yamlPoints = (points) => "[" + points.map(([x, y]) => `[${round3(x)}, ${round3(y)}]`).join(", ") + "]";
// A name YAML reads as a plain string as it is; any other (12, on, a space) in JSON's quotes, which
// YAML reads too: whether it is a zone name is the config's to say.
const yamlName = (name) => /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) && !/^(yes|no|on|off|true|false|null)$/i.test(name)
  ? name : JSON.stringify(name);

// The YAML of shapes: zones as [name, points] pairs (a name given twice is written twice, for the
// loader to refuse), masks, and the camera's other motion settings.
function zonesYaml({zones, masks, motion, motionGiven}) {
  const lines = [zones.length ? "zones:" : "zones: {}"];
  for (const [name, points] of zones) lines.push(`  ${yamlName(name)}: ${yamlPoints(points)}`);
  // motion: only where the camera has one (its own or the defaults') or masks were drawn: a camera's
  // motion: replaces the defaults' whole, so the settings it had come with the masks, and an empty
  // one (motion: {masks: []}, the defaults' masks off this camera) is kept.
  if (masks.length || motion.size || motionGiven) {
    lines.push("motion:");
    for (const [key, value] of motion) lines.push(`  ${key}: ${JSON.stringify(value)}`);
    lines.push(masks.length ? "  masks:" : "  masks: []");
    for (const mask of masks) lines.push(`    - ${yamlPoints(mask)}`);
  }
  return lines.join("\n") + "\n";
}
const shapesNow = () => ({zones: [...editor.zones], masks: editor.masks, motion: editor.motion, motionGiven: editor.motionGiven});

// The shapes of GET .../zones' answer, or of a check's.
function takeShapes(answer) {
  editor.zones = new Map(answer.zones.map((zone) => [zone.name, zone.points]));  // in order: the first zone wins
  editor.masks = answer.motion.masks;
  editor.motion = new Map(Object.entries(answer.motion).filter(([key]) => key !== "masks"));
  editor.motionGiven = answer.motion_given;
}

// The text as last edited, per user and camera, in this tab's own storage: a session that ends
// mid-edit sends the page to the login page, and Escape or Done closes the editor, which reopens
// with the running zones; either lost the text. Kept only where it differs from the running zones.
const draftKey = () => `maskwatch.zones.${byId("password-user").value}.${editor.camera}`;
function keepDraft() {
  if (editor.runningText === null) return;  // not read yet: the draft from before is still to be read
  const text = byId("zone-yaml").value;
  try {
    if (text !== editor.runningText) sessionStorage.setItem(draftKey(), text);
    else sessionStorage.removeItem(draftKey());
  } catch { /* storage off (a private window's setting): the text lives as long as the page */ }
}
function readDraft() {
  try { return sessionStorage.getItem(draftKey()); } catch { return null; }
}
function forgetDrafts() {  // at a logout: the next user of this tab (a shared till) does not get them
  try {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith("maskwatch.zones.")) sessionStorage.removeItem(key);
  } catch { /* storage off: nothing kept */ }
}

// The text read and checked by the config's own loader on the server (POST .../zones/check, which
// writes nothing): {shapes} or {error}, the problem in one line as `maskwatch run --check` says it;
// null where a newer check (or another camera) came since `mine` was taken.
async function checkText(text, mine = ++editor.checks) {
  const opened = editor.opened;
  let checked;
  try {
    const response = await api(`v1/cameras/${encodeURIComponent(editor.camera)}/zones/check`, {
      signal: AbortSignal.timeout(READ_TIMEOUT),  // it writes nothing: bounded as a read is
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text})});
    const answer = await response.json().catch(() => ({}));
    checked = response.ok ? {shapes: answer} : {error: answer.error || `the server answered ${response.status}`};
  } catch (err) {
    checked = {error: `${readFailure(err)}; edit the text to try again`};
  }
  return mine === editor.checks && opened === editor.opened ? checked : null;
}

function drawShapes() {
  const overlay = byId("zone-overlay"), {width, height} = editor;
  overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
  overlay.classList.toggle("stale", editor.text === "bad");
  // names 14 px high as shown (the picture's pixels are fewer on a phone), corners 5 px round
  const shown = overlay.getBoundingClientRect().width;
  const size = 14 * (shown > 0 ? width / shown : 1);
  const at = (points) => points.map(([x, y]) => `${x * width},${y * height}`).join(" ");
  const shapes = [];
  const shape = (kind, name, points) => {
    const group = svgElement("g", {"data-kind": kind, "data-name": name});
    group.append(svgElement("polygon", {class: kind, points: at(points)}));
    const [x, y] = points.reduce(([sx, sy], [px, py]) => [sx + px / points.length, sy + py / points.length], [0, 0]);
    group.append(svgElement("text", {x: x * width, y: y * height, "text-anchor": "middle", "font-size": size}, name));
    shapes.push(group);
  };
  for (const [name, points] of editor.zones) shape("zone", name, points);
  editor.masks.forEach((points, k) => shape("mask", `mask ${k + 1}`, points));
  if (editor.drawing.length) {
    const group = svgElement("g", {class: "drawing-points"});
    group.append(svgElement("polyline", {class: "drawing", points: at(editor.drawing)}));
    for (const [x, y] of editor.drawing) group.append(svgElement("circle", {cx: x * width, cy: y * height, r: size * 5 / 14}));
    shapes.push(group);
  }
  overlay.replaceChildren(...shapes);
  // A name is centred on its shape, and moved in where that put it past the picture's edge: "mask 1"
  // of a mask on the frame's top corner, or a long zone name by a side, was cut off on a phone.
  for (const text of overlay.querySelectorAll("text")) {
    const box = text.getBBox();
    const dx = Math.max(Math.min(0, width - box.x - box.width), -box.x);
    const dy = Math.max(Math.min(0, height - box.y - box.height), -box.y);
    if (dx) text.setAttribute("x", Number(text.getAttribute("x")) + dx);
    if (dy) text.setAttribute("y", Number(text.getAttribute("y")) + dy);
  }
  drawCursor();
  const items = [];
  const item = (text, label, remove) => {
    const li = document.createElement("li");
    const button = Object.assign(document.createElement("button"), {type: "button", textContent: "Delete"});
    button.setAttribute("aria-label", "Delete " + label);
    button.addEventListener("click", () => {
      if (editor.text !== "ok") return say(drawingRefused());  // the text being mended is not written over
      remember();
      remove();
      shapesChanged(`${label} deleted; "Undo" (Backspace) brings it back`);
      byId("zone-undo").focus();  // the focus was on the button just removed: it fell to the page's top
    });
    li.append(text, button);
    items.push(li);
  };
  for (const [name, points] of editor.zones) item(`zone ${name}, ${points.length} corners`, `zone ${name}`, () => editor.zones.delete(name));
  editor.masks.forEach((points, k) => item(`motion mask ${k + 1}, ${points.length} corners`, `motion mask ${k + 1}`,
                                           () => editor.masks.splice(k, 1)));
  byId("zone-list").replaceChildren(...items);
  keepBackEntry();  // a shape open or not: the back gesture's entry follows
}

// The keyboard's cross, white under black (seen on a dark picture and a light one), while the
// picture has the focus; on its own: a redraw of the list on the focus leaving the picture for a
// Delete button replaced the button between the press and the release, and the click was lost.
function drawCursor() {
  const overlay = byId("zone-overlay"), {width, height} = editor;
  overlay.querySelector(".cursor")?.remove();
  if (!editor.cursorShown) return;
  const shown = overlay.getBoundingClientRect().width;
  const [cx, cy] = [editor.cursor[0] * width, editor.cursor[1] * height], arm = 14 * (shown > 0 ? width / shown : 1);
  const group = svgElement("g", {class: "cursor"});
  for (let k = 0; k < 4; k++) {
    group.append(svgElement("line", k % 2 ? {x1: cx, x2: cx, y1: cy - arm, y2: cy + arm}
                                          : {x1: cx - arm, x2: cx + arm, y1: cy, y2: cy}));
  }
  overlay.append(group);
}

function say(text) { byId("zone-status").textContent = text; }

function shapesChanged(message) {  // a change made on the picture: the text follows
  clearTimeout(editor.timer);
  editor.checks++;  // a check of the text before it answers nothing now
  byId("zone-yaml").value = zonesYaml(shapesNow());
  textChecked("");
  keepDraft();
  drawShapes();
  if (message) say(message);
}

// The text's state after a check (or a change made on the picture): its problem said under it and
// the field marked invalid for a screen reader, or neither; "Copied." is of the text before.
function textChecked(problem) {
  editor.text = problem ? "bad" : "ok";
  byId("zone-yaml-error").textContent = problem ? "Not drawn: " + problem : "";
  byId("zone-yaml").setAttribute("aria-invalid", String(Boolean(problem)));
  byId("zone-copied").textContent = "";
}

function drawingRefused() {
  if (editor.text === "reading") return "The camera's zones and picture are being read: a moment.";
  if (editor.text === "unread") return "The camera's zones or picture could not be read: press \"Try again\" (a text drawn on nothing would replace its zones).";
  if (editor.text === "bad") return "The text has a problem (said under it): mend it first; the picture shows the shapes before it.";
  if (editor.text === "checking") return "The text is being checked: a moment.";
  if (!byId("zone-name-form").hidden) return "Name the closed shape first, or discard it.";
  return null;
}

function addCorner(x, y) {
  const refused = drawingRefused();
  if (refused) return say(refused);
  editor.drawing.push([x, y]);
  drawShapes();
  const n = editor.drawing.length;
  say(`${n} corner${n === 1 ? "" : "s"}, the last at ${round3(x)}, ${round3(y)}` +
      (n >= 3 ? `; "Close the shape" (Enter) when done` : ""));
}

// The click as a share of the picture's width and height: the page may show it at any size (a
// phone, a 4K picture scaled down), the config's points are of the frame. A click within 6 px of an
// edge is on it: the last pixel of a picture shown 343 px wide is 0.999 of it, and a mask of the
// frame's top strip wants its corners at 0 and 1 exactly. At most a twentieth of the picture: a very
// wide one is shown a few dozen px high on a phone, and 6 px of each edge left little in between.
const EDGE_PX = 6;
byId("zone-overlay").addEventListener("click", (event) => {
  const box = byId("zone-overlay").getBoundingClientRect();
  const share = (offset, size) => {
    const edge = Math.min(EDGE_PX, size / 20);
    return offset < edge ? 0 : offset > size - edge ? 1 : offset / size;
  };
  editor.cursor = [share(event.clientX - box.left, box.width), share(event.clientY - box.top, box.height)].map(round3);
  addCorner(...editor.cursor);  // the arrow keys go on from there
});
// The keyboard's way: a cross moved with the arrow keys (a hundredth of the picture a press, a
// tenth with Shift; it stops at the edges), Space adds a corner where it is. Shown when the focus
// came by the keyboard (a click's focus showed a cross away from the click).
byId("zone-overlay").addEventListener("focus", (event) => {
  editor.cursorShown = event.target.matches(":focus-visible");
  drawCursor();
});
byId("zone-overlay").addEventListener("blur", () => { editor.cursorShown = false; drawCursor(); });
const ARROWS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
byId("zone-overlay").addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key in ARROWS) {
    event.preventDefault();
    const step = event.shiftKey ? 0.1 : 0.01, [dx, dy] = ARROWS[event.key];
    const clamp = (v) => round3(Math.min(1, Math.max(0, v)));
    editor.cursor = [clamp(editor.cursor[0] + dx * step), clamp(editor.cursor[1] + dy * step)];
    editor.cursorShown = true;
    drawCursor();
    say(`cross at ${editor.cursor[0]}, ${editor.cursor[1]}`);
  } else if (event.key === " ") {
    event.preventDefault();
    addCorner(...editor.cursor);
  }
});

// Undo: the last corner of the shape being drawn, else the last change made on the picture (a shape
// added or deleted, "Start again"): a Delete pressed by mistake lost a zone drawn corner by corner.
function remember() { editor.history = [...editor.history.slice(-49), byId("zone-yaml").value]; }
async function undo() {
  if (!byId("zone-name-form").hidden) return say("Name the closed shape first, or discard it.");
  if (editor.drawing.length) {
    editor.drawing.pop();
    drawShapes();
    return say(`${editor.drawing.length} corners`);
  }
  if (editor.text !== "ok") return say(drawingRefused());  // the text being typed is the textarea's to undo (Ctrl+Z)
  if (!editor.history.length) return say("Nothing to undo.");
  byId("zone-yaml").value = editor.history.pop();
  keepDraft();
  editor.text = "checking";
  say("Undone.");
  await checkTyped(++editor.checks);
}

function closeShape() {
  const refused = drawingRefused();
  if (refused) return say(refused);
  if (editor.drawing.length < 3) return say(`A shape needs at least 3 corners; ${editor.drawing.length} so far: click the picture.`);
  byId("zone-name-form").hidden = false;
  byId("zone-name-error").textContent = "";
  byId("zone-name").value = "";
  byId("zone-name").focus();
  say("Shape closed: name it as a zone, or save it as a motion mask (its motion is ignored).");
}

function endShape() {
  editor.drawing = [];
  byId("zone-name-form").hidden = true;
  byId("zone-overlay").focus();
}

byId("zone-undo").addEventListener("click", undo);
byId("zone-close").addEventListener("click", closeShape);
// A closed shape saved: the text with it is checked by the config's loader first, which says what
// is wrong with its name (a zone name's rule, one given twice) or its corners (crossing, no area).
async function saveShape(zone) {
  const error = byId("zone-name-error");
  if (editor.text !== "ok") { error.textContent = "Not saved: " + drawingRefused(); return; }
  const shapes = shapesNow(), name = byId("zone-name").value.trim();
  if (zone) shapes.zones = [...shapes.zones, [name, editor.drawing]];
  else shapes.masks = [...shapes.masks, editor.drawing];
  error.textContent = "";
  const checked = await checkText(zonesYaml(shapes));
  if (!checked) return;  // the text was edited meanwhile
  byId("zone-name").setAttribute("aria-invalid", String(Boolean(checked.error && zone)));  // a zone's name or corners
  if (checked.error) { error.textContent = "Not saved: " + checked.error; return; }
  remember();
  endShape();
  takeShapes(checked.shapes);
  shapesChanged(zone ? `zone ${name} added` : `motion mask ${editor.masks.length} added`);
}
byId("zone-name-form").addEventListener("submit", (event) => { event.preventDefault(); saveShape(true); });
byId("zone-as-mask").addEventListener("click", () => saveShape(false));
byId("zone-discard").addEventListener("click", () => { endShape(); drawShapes(); say("Shape discarded."); });
// Escape with a shape open takes back a step of it, not the whole editor (the dialog's own Escape
// closed it, and the shape's corners, in no text yet, were lost with it): while naming, the closing
// only; else the shape. With no shape open, Escape closes the editor.
function escapeShape(event) {
  if (event.key !== "Escape" || !editor.drawing.length) return false;
  event.preventDefault();  // not the dialog's own Escape
  event.stopPropagation();
  shapeStepBack();
  const n = editor.drawing.length;
  say(n ? `Not named: the shape's ${n} corners are kept; add more, take one back (Backspace), ` +
          `or close it again (Enter); Escape again drops it.`
        : "Shape dropped; Escape again closes the editor.");
  return true;
}
function shapeStepBack() {  // Escape's, or the back gesture's, step with a shape open
  if (byId("zone-name-form").hidden) editor.drawing = [];
  byId("zone-name-form").hidden = true;
  byId("zone-overlay").focus();
  drawShapes();
}
// A phone's back gesture likewise: it closed the editor over an open shape, its corners lost. While
// a shape is open a history entry of the page's is on top, pushed when the shape starts and taken
// back when it ends (drawShapes, or the editor closing), so that "back" comes here (popstate), not
// to the page before; where the browser makes "back" a modal dialog's close request (Chrome on
// Android: the dialog's cancel), that is taken the same way.
let shapeEntry = false;  // the entry pushed for the open shape is the current one
let ownBack = false;     // the page's own history.back() (the shape ended): its popstate is not the user's
function keepBackEntry() {
  const open = byId("zone-editor").open && editor.drawing.length > 0;
  if (open && !shapeEntry) {
    history.pushState({...history.state, shapeOpen: true}, "");
    shapeEntry = true;
  } else if (!open && shapeEntry) {
    shapeEntry = false;
    ownBack = true;
    history.back();
  }
}
function backOverShape() {
  shapeStepBack();
  const n = editor.drawing.length;
  say(n ? `Not named: the shape's ${n} corners are kept; add more, take one back (Undo), or close it again.`
        : "Shape dropped.");
}
// A reload keeps the entry pushed for an open shape, not the shape: "back" from the reloaded page came
// to the same page, a dead step. Gone back over at once (the same page's entry: a popstate), as the
// history of a fresh open is; a later shape's entry replaces the one left ahead.
if (history.state?.shapeOpen) {
  ownBack = true;
  history.back();
}
window.addEventListener("popstate", () => {
  if (ownBack) { ownBack = false; return; }
  if (!shapeEntry) return;
  shapeEntry = false;  // gone back past it: another is pushed if the shape stays open
  if (byId("zone-editor").open && editor.drawing.length) backOverShape();
});
byId("zone-editor").addEventListener("cancel", (event) => {  // not Escape's: its keydown is taken above
  if (!editor.drawing.length) return;
  event.preventDefault();
  backOverShape();
});
byId("zone-editor").addEventListener("close", keepBackEntry);
byId("zone-done").addEventListener("click", () => byId("zone-editor").close());
window.addEventListener("resize", () => { if (byId("zone-editor").open) drawShapes(); });  // a phone turned

// Enter closes the shape, Backspace takes its last corner back: not while typing (the text, the name)
// nor, for Enter, on a button (it presses the button).
byId("zone-editor").addEventListener("keydown", (event) => {
  if (escapeShape(event)) return;  // from anywhere in the editor: the text, the name, a button
  const typing = event.target.closest("textarea, input");
  if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "Enter" && !event.target.closest("button")) { event.preventDefault(); closeShape(); }
  if (event.key === "Backspace") { event.preventDefault(); undo(); }
});

// The text is the keyboard's way to the points: a pause in typing (300 ms) sends it to the check,
// whose answer redraws or says in one line why not; the answer to older text is dropped.
byId("zone-yaml").addEventListener("input", () => {
  const mine = ++editor.checks;
  editor.text = "checking";
  clearTimeout(editor.timer);
  keepDraft();
  editor.timer = setTimeout(() => checkTyped(mine), 300);
});
async function checkTyped(mine) {
  const checked = await checkText(byId("zone-yaml").value, mine);
  if (!checked) return;
  if (checked.shapes) takeShapes(checked.shapes);
  textChecked(checked.error);
  drawShapes();
}

byId("zone-copy").addEventListener("click", () => copyField(byId("zone-yaml"), byId("zone-copied")));

// Back to the zones the camera runs with, the text kept till now dropped.
byId("zone-restart").addEventListener("click", () => {
  if (editor.running === null) return say(drawingRefused() || "The running zones are not read yet: a moment.");
  clearTimeout(editor.timer);
  remember();
  editor.drawing = [];
  byId("zone-name-form").hidden = true;
  takeShapes(editor.running);
  shapesChanged("The running zones are back; the text from before is dropped.");
});

function blankPicture() {  // a grey 4:3 box
  const blank = Object.assign(document.createElement("canvas"), {width: 640, height: 480});
  const context = blank.getContext("2d");
  context.fillStyle = "#ddd";
  context.fillRect(0, 0, 640, 480);
  Object.assign(editor, {width: 640, height: 480});
  const picture = byId("zone-picture");
  picture.onload = picture.onerror = null;
  picture.src = blank.toDataURL();
}

byId("zone-retry").addEventListener("click", () => {
  byId("zone-overlay").focus();  // the button goes: the focus would fall to the page's top
  openZoneEditor(editor.camera, editor.name);
});

async function openZoneEditor(cameraId, name) {
  const mine = ++editor.opened;
  clearTimeout(editor.timer);
  if (editor.pictureUrl) URL.revokeObjectURL(editor.pictureUrl);
  Object.assign(editor, {camera: cameraId, name, zones: new Map(), masks: [], motion: new Map(), motionGiven: false,
                         drawing: [], running: null, runningText: null, history: [], pictureUrl: null});
  byId("zone-camera-name").textContent = name;
  byId("zone-camera-id").textContent = cameraId;
  byId("zone-name-form").hidden = true;
  byId("zone-yaml").value = "";
  byId("zone-yaml").readOnly = true;  // until the zones are read: typed before, it was written over
  textChecked("");
  editor.text = "reading";
  byId("zone-list").replaceChildren();
  byId("zone-retry").hidden = true;
  say("Reading the camera's zones and picture…");
  if (!byId("zone-editor").open) byId("zone-editor").showModal();
  const picture = byId("zone-picture");
  blankPicture();  // until both are read: not the picture before (another camera's) under this one's name
  picture.alt = "";
  const [zones, frame] = await Promise.allSettled([
    checked(`v1/cameras/${encodeURIComponent(cameraId)}/zones`),
    readPicture(`v1/cameras/${encodeURIComponent(cameraId)}/frame.jpg?t=${Date.now()}`)]);
  if (mine !== editor.opened) {
    if (frame.value) URL.revokeObjectURL(frame.value);
    return;
  }
  const failed = [[zones, "zones"], [frame, "picture"]].filter(([read]) => read.status === "rejected");
  if (failed.some(([read]) => read.reason.message === "logged out")) return;  // on its way to the login page
  if (failed.length) {
    if (frame.value) URL.revokeObjectURL(frame.value);
    editor.text = "unread";  // an empty text drawn on, pasted, would have replaced the zones it never read
    say(`The camera's ${failed.map(([, what]) => what).join(" and ")} could not be read ` +
        `(${[...new Set(failed.map(([read]) => readFailure(read.reason)))].join("; ")}): press "Try again".`);
    byId("zone-retry").hidden = false;
    return;
  }
  const answer = zones.value;
  editor.pictureUrl = frame.value;
  let hasPicture = false;
  if (frame.value) {
    hasPicture = await new Promise((resolve) => {  // the picture is here: only decoded now
      picture.onload = () => resolve(true);
      picture.onerror = () => resolve(false);
      picture.src = frame.value;
    });
    if (mine !== editor.opened) return;
  }
  if (hasPicture) {
    editor.width = picture.naturalWidth;
    editor.height = picture.naturalHeight;
  } else {  // no frame yet: a blank 4:3 box, the points still shares of the frame
    blankPicture();
  }
  picture.alt = hasPicture ? `the newest picture of ${name}` : `no picture from ${name} yet`;
  editor.running = answer;
  byId("zone-yaml").readOnly = false;
  const draft = readDraft();
  takeShapes(answer);
  editor.runningText = zonesYaml(shapesNow());
  shapesChanged(hasPicture ? "Click the picture to add a corner." :
    "No picture from this camera yet: the shapes are drawn on a blank 4:3 box, their points still shares of the frame.");
  if (draft !== null && draft !== byId("zone-yaml").value) {  // the text left here before, drawn once checked
    byId("zone-yaml").value = draft;
    keepDraft();
    editor.text = "checking";
    await checkTyped(++editor.checks);
    if (mine === editor.opened) say("Your text from before is back, not yet in site.yaml; \"Start again from the running zones\" drops it.");
  }
}
