// "Check a photo": one photo posted to /v1/detect, its counts and annotated picture shown.

function showCounts(element, counts) {
  element.innerHTML = Object.entries(counts)
    .map(([c, n]) => `<span class="${c}" data-class="${c}">${LABELS[c]}: <b>${n}</b></span>`).join("");
}

// One photo at a time. The button is marked busy, not disabled: disabling the focused button sent
// the keyboard's focus to the top of the page.
let checking = false;
const FILE_REFUSALS = new Set([400, 413, 415]);  // POST /v1/detect's answers about the file
document.getElementById("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (checking) return;
  const file = document.getElementById("photo").files[0];
  const error = document.getElementById("error");
  const counts = document.getElementById("photo-counts"), img = document.getElementById("result");
  const button = event.target.querySelector("button");
  // The last photo's result goes at once: a failed upload left it under the error, read as this one's.
  error.textContent = "";
  counts.textContent = "";
  img.hidden = true;
  const field = document.getElementById("photo");
  field.removeAttribute("aria-invalid");
  // A refusal of the file marks the field invalid (the error is its description, dashboard.html):
  // the error stood under the form tied to nothing, the focus on "Detect".
  const refused = (text) => { error.textContent = text; field.setAttribute("aria-invalid", "true"); };
  if (!file) { refused("Choose a photo first."); field.focus(); return; }
  const body = new FormData();
  body.append("image", file);
  checking = true;
  button.setAttribute("aria-disabled", "true");
  counts.textContent = "checking the photo…";
  try {
    const response = await api("v1/detect?annotate=1", {method: "POST", body});
    counts.textContent = "";
    if (!response.ok) {
      const detail = await response.json().catch(() => ({error: response.statusText}));
      // 400, 413, 415: this file (not an image, too big, corrupt), as the route refuses one; any
      // other (a proxy's 429 "too many requests", a 403, a 5xx) is no fault of the field's
      const text = detail.error || JSON.stringify(detail);
      if (FILE_REFUSALS.has(response.status)) refused(text); else error.textContent = text;
      return;
    }
    showCounts(counts, JSON.parse(response.headers.get("X-Maskwatch-Counts")));
    img.src = URL.createObjectURL(await response.blob());
    img.hidden = false;
  } catch (err) {
    counts.textContent = "";
    error.textContent = `the server did not answer (${err.message})`;
  } finally {
    checking = false;
    button.removeAttribute("aria-disabled");
  }
});
