// Your drawings: once a drawing is read, "Right" (Enter) or "wrong, it is D" (or the key D) keeps it
// with its label through POST /api/drawings, in the folder the page names; the table shows how many
// there are per digit and how often the selected model is right on them, for this visit and for the
// whole set. Nothing is sent before the toggle is on (the server starts it on with --collect DIR).
// Uses app.js's canvasJSON(), clearCanvas(), setStatus(), digitEl, modelSelect and model.
"use strict";

const collectEl = document.getElementById("collect");
const collectOn = document.getElementById("collect-on");
const feedbackEl = document.getElementById("feedback");
const recentEl = document.getElementById("recent");
const perDigitEl = document.getElementById("per-digit");
const session = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
let collectAllowed = false, saving = false;

const labelButtons = document.getElementById("labels");
for (let d = 0; d < 10; d++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(d);
  button.dataset.label = String(d);
  button.addEventListener("click", () => keep(d));
  labelButtons.appendChild(button);
}
const perDigitRows = [];
for (let d = 0; d < 10; d++) {
  const row = document.createElement("tr");
  row.innerHTML = `<th>${d}</th><td class="session"></td><td class="set"></td>`;
  perDigitEl.appendChild(row);
  perDigitRows.push(row);
}

function modelQuery(first) {
  return model ? (first ? "?" : "&") + "model=" + encodeURIComponent(model) : "";
}

function percent(value) {
  return value == null ? "–" : `${(100 * value).toFixed(1)}%`;
}

// The digit on show, if it is the reading of the drawing as it is now; else null.
function currentReading() {
  const text = digitEl.textContent;
  return digitEl.dataset.current === "true" && /^[0-9]$/.test(text) ? Number(text) : null;
}

function updateFeedback() {
  feedbackEl.hidden = !(collectOn.checked && collectAllowed);
  const ready = currentReading() !== null && !saving;
  feedbackEl.querySelectorAll("button").forEach((b) => { b.disabled = !ready; });
}
new MutationObserver(updateFeedback).observe(digitEl, { attributes: true, childList: true, characterData: true, subtree: true });

function showSummary(summary) {
  collectEl.hidden = false;
  document.getElementById("download").href = "/api/drawings/download";
  document.getElementById("collect-folder").textContent = summary.folder;
  collectAllowed = summary.allowed;
  collectOn.disabled = !summary.allowed;
  const off = document.getElementById("collect-off");
  off.hidden = summary.allowed;
  off.textContent = summary.allowed ? "" : "Collecting is off on this server: start it with --collect DIR to keep drawings.";
  const all = summary.all || { count: 0, per_digit: new Array(10).fill(0), accuracy: null, per_digit_accuracy: [] };
  const mine = summary.session || { count: 0, per_digit: new Array(10).fill(0), accuracy: null, per_digit_accuracy: [] };
  document.getElementById("session-count").textContent = String(mine.count);
  document.getElementById("set-count").textContent = String(all.count);
  document.getElementById("session-accuracy").textContent = percent(mine.accuracy);
  document.getElementById("set-accuracy").textContent = percent(all.accuracy);
  perDigitRows.forEach((row, d) => {
    const cell = (part) => part.per_digit[d] ? `${part.per_digit[d]} (${percent(part.per_digit_accuracy[d])})` : "";
    row.querySelector(".session").textContent = cell(mine);
    row.querySelector(".set").textContent = cell(all);
  });
  recentEl.replaceChildren(...(summary.recent || []).map((r) => {
    const item = document.createElement("li");
    item.dataset.id = String(r.id);
    const text = document.createElement("span");
    text.textContent = `#${r.id}: ${r.label}` + (r.answer === r.label ? " (read right)" : ` (read as ${r.answer})`);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = `delete drawing #${r.id}`;
    remove.addEventListener("click", () => removeOne(r.id));
    item.append(text, remove);
    return item;
  }));
  updateFeedback();
}

async function refreshSummary() {
  try {
    const response = await fetch(`/api/drawings/summary?session=${session}` + modelQuery(false));
    if (response.status === 404) return;  // a server without the drawings API
    const summary = await response.json();
    if (!response.ok) throw new Error(summary.detail || response.statusText);
    if (collectOn.dataset.touched !== "true") collectOn.checked = summary.enabled;
    showSummary(summary);
  } catch (error) {
    setStatus(`drawings: ${error.message || error}`, true);
  }
}

async function keep(label) {
  if (saving || currentReading() === null || !collectOn.checked) return;
  saving = true;
  updateFeedback();
  try {
    const body = JSON.parse(await canvasJSON());
    body.label = label;
    body.session = session;
    const response = await fetch("/api/drawings" + modelQuery(true), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const result = await response.json();
    if (!response.ok) throw new Error(result.detail || response.statusText);
    clearCanvas();
    setStatus(`kept drawing #${result.drawing.id} as ${label}`);
    showSummary(result.summary);
  } catch (error) {
    setStatus(`not kept: ${error.message || error}`, true);
  } finally {
    saving = false;
    updateFeedback();
  }
}

async function removeOne(id) {
  const response = await fetch(`/api/drawings/${id}`, { method: "DELETE" });
  if (!response.ok) setStatus(`could not delete #${id}`, true);
  else setStatus(`deleted drawing #${id}`);
  refreshSummary();
}

document.getElementById("right").addEventListener("click", () => {
  const digit = currentReading();
  if (digit !== null) keep(digit);
});
document.getElementById("delete-all").addEventListener("click", async () => {
  if (!confirm("Delete every drawing in the set?")) return;
  const response = await fetch("/api/drawings", { method: "DELETE" });
  const result = await response.json();
  setStatus(response.ok ? `deleted ${result.deleted} drawings` : String(result.detail), !response.ok);
  refreshSummary();
});
collectOn.addEventListener("change", () => { collectOn.dataset.touched = "true"; updateFeedback(); });
document.addEventListener("keydown", (event) => {
  if (!collectOn.checked || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLSelectElement || ["text", "number", "search"].includes(event.target.type)) return;
  if (/^[0-9]$/.test(event.key)) { event.preventDefault(); keep(Number(event.key)); }
  else if (event.key === "Enter" && currentReading() !== null) { event.preventDefault(); keep(currentReading()); }
});
modelSelect.addEventListener("change", refreshSummary);
refreshSummary();
