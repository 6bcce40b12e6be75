// The study's rating page: asks /api/next for a question, shows its two GIFs, posts the choice
// to /api/answer (app.py). data-ready and data-question on #question are for the browser test.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { rater: null, question: null, busy: false };

function show(id) {
  for (const s of ["start", "question", "done"]) $(s).hidden = (s !== id);
}
function setButtons(enabled) {
  $("choose-left").disabled = !enabled;
  $("choose-right").disabled = !enabled;
  $("question").dataset.ready = enabled ? "1" : "0";
}
async function getJson(response) {
  try { return await response.json(); } catch (e) { return { error: "HTTP " + response.status }; }
}
async function next() {
  const r = await fetch("/api/next?rater=" + encodeURIComponent(state.rater), { cache: "no-store" });
  const body = await getJson(r);
  if (!r.ok) { show("start"); $("start-error").textContent = body.error; return; }
  $("progress-bar").max = body.total;
  $("progress-bar").value = body.answered;
  if (body.done) {
    $("done-text").textContent = "You answered all " + body.total + " questions as rater " + state.rater + ".";
    show("done");
    return;
  }
  state.question = body.question;
  setButtons(false);
  $("question").dataset.question = body.question;
  $("progress-text").textContent = "Question " + (body.answered + 1) + " of " + body.total;
  $("rater-label").textContent = "rater " + state.rater;
  $("question-error").textContent = "";
  const loaded = new Set();
  for (const side of ["left", "right"]) {
    const img = $(side + "-video");
    const done = () => { loaded.add(side); if (loaded.size === 2 && state.question === body.question) setButtons(true); };
    img.onload = done;
    img.onerror = () => { $("question-error").textContent = "A video did not load; reload the page."; };
    img.src = body[side];
    if (img.complete && img.naturalWidth > 0) done();
  }
  show("question");
}
async function choose(side) {
  if (state.busy || $("choose-" + side).disabled) return;
  state.busy = true;
  setButtons(false);
  try {
    const r = await fetch("/api/answer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rater: state.rater, question: state.question, choice: side }),
    });
    if (!r.ok && r.status !== 409) {   // 409: answered already (e.g. in another tab): move on
      $("question-error").textContent = (await getJson(r)).error;
      setButtons(true);
      return;
    }
    await next();
  } catch (e) {
    $("question-error").textContent = "The study server did not answer; is it still running?";
    setButtons(true);
  } finally {
    state.busy = false;
  }
}
$("start-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = $("rater").value.trim();
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(id)) { $("start-error").textContent = "Use 1-40 letters, digits, - or _."; return; }
  state.rater = id;
  $("start-error").textContent = "";
  next();
});
$("choose-left").addEventListener("click", () => choose("left"));
$("choose-right").addEventListener("click", () => choose("right"));
document.addEventListener("keydown", (event) => {
  if ($("question").hidden) return;
  if (event.key === "ArrowLeft") choose("left");
  if (event.key === "ArrowRight") choose("right");
});
