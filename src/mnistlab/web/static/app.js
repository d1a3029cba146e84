// The draw-a-digit page: strokes on a canvas (pointer events: mouse, touch, pen), sent to
// POST /api/predict as a grayscale canvas (one byte per pixel, deflated, base64); the server crops, scales and
// centres it as MNIST did and answers the digit, the 10 probabilities and the 28x28 image the model saw.
"use strict";

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const brush = document.getElementById("brush");
const brushValue = document.getElementById("brush-value");
const digitEl = document.getElementById("digit");
const confidenceEl = document.getElementById("confidence");
const statusEl = document.getElementById("status");
const preview = document.getElementById("preview");
const previewCtx = preview.getContext("2d");
const barsEl = document.getElementById("bars");
const modelSelect = document.getElementById("model");
const modelInfo = document.getElementById("model-info");
const upload = document.getElementById("upload");

const DEBOUNCE_MS = 80;   // while drawing, ask at most this often once the pen pauses
const INK = "#1d2433";

let strokes = [];         // [{width, points: [[x, y], ...]}]: undo drops the last one and redraws
let current = null;       // the stroke being drawn
let activePointer = null; // one pointer draws at a time (a second finger is ignored)
let version = 0;          // bumped by every change; a prediction is shown as current only for the latest
let model = null;         // selected model name (null: the server's default)
let timer = null, inFlight = false, again = false;

// Bars for the 10 classes.
const bars = [];
for (let d = 0; d < 10; d++) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.innerHTML = `<div class="pct"></div><div class="fill" style="height:0%"></div><div class="name">${d}</div>`;
  barsEl.appendChild(bar);
  bars.push(bar);
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

function drawStroke(stroke) {
  ctx.strokeStyle = ctx.fillStyle = INK;
  ctx.lineWidth = stroke.width;
  ctx.lineCap = ctx.lineJoin = "round";
  const pts = stroke.points;
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
  ctx.stroke();
}

function redraw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  strokes.forEach(drawStroke);
  if (current) drawStroke(current);
}

function markStale() {
  version++;
  digitEl.dataset.current = "false";
  digitEl.classList.add("stale");
}

function changed(delay) {
  markStale();
  clearTimeout(timer);
  timer = setTimeout(predictDrawing, delay);
}

canvas.addEventListener("pointerdown", (event) => {
  if (activePointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  activePointer = event.pointerId;
  canvas.setPointerCapture(event.pointerId);
  current = { width: Number(brush.value), points: [canvasPoint(event)] };
  drawStroke(current);
  changed(DEBOUNCE_MS);
});

canvas.addEventListener("pointermove", (event) => {
  if (event.pointerId !== activePointer || !current) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of (events.length ? events : [event])) current.points.push(canvasPoint(e));
  redraw();
  changed(DEBOUNCE_MS);
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  if (current) strokes.push(current);
  current = null;
  changed(0);
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function clearCanvas() {
  strokes = [];
  current = null;
  activePointer = null;
  redraw();
  upload.value = "";
  setStatus("");
  changed(0);
}

function undo() {
  strokes.pop();
  redraw();
  changed(0);
}

document.getElementById("clear").addEventListener("click", clearCanvas);
document.getElementById("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clearCanvas();
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
});
brush.addEventListener("input", () => { brushValue.textContent = brush.value; });

// The box of the canvas's ink (every pixel > 0), widened to at least MIN_SIDE a side within the canvas:
// {x, y, width, height}, or the whole canvas when nothing is drawn. The server crops to the ink itself (at a
// tenth of the brightest pixel, inside this box) before anything else, so what it reads of the box is what
// it reads of the whole canvas (mnistlab.data.drawing.ink_crop is the same rule; the tests hold both to it),
// and it inflates and scans far fewer pixels (bench_draw.py's redrawn digits: 1,696 of 78,400 on average).
const MIN_SIDE = 28;
function inkBox(alpha, width, height) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (alpha[row + x]) {
        if (y < top) top = y;
        bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (bottom < 0) return { x: 0, y: 0, width, height };
  const widen = (first, last, size) => {  // [first, last] grown to MIN_SIDE, shifted back inside the canvas
    const side = Math.min(size, Math.max(MIN_SIDE, last - first + 1));
    return [Math.max(0, Math.min(first, size - side)), side];
  };
  const [x, w] = widen(left, right, width), [y, h] = widen(top, bottom, height);
  return { x, y, width: w, height: h };
}

// A drawing as POST /api/predict's compact JSON form: {"width", "height", "encoding", "data"}, data the
// base64 of one byte of ink (0..255) per pixel, row by row: the strokes' alpha, so the drawing colour
// does not matter. Deflated where the browser can (CompressionStream): a 280x280 drawing is then about
// 1.5 kB instead of 105 kB, less to send and far less for the server to read. With ``crop``, only the
// ink's box (inkBox) is sent: the same reading from fewer pixels.
async function canvasJSON(crop = false) {
  const full = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let alpha = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0; i < alpha.length; i++) alpha[i] = full[4 * i + 3];
  const box = crop ? inkBox(alpha, canvas.width, canvas.height) : { x: 0, y: 0, width: canvas.width, height: canvas.height };
  const { width, height } = box;
  let bytes = alpha;
  if (width !== canvas.width || height !== canvas.height) {
    bytes = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const start = (box.y + y) * canvas.width + box.x;
      bytes.set(alpha.subarray(start, start + width), y * width);
    }
  }
  let encoding = "raw";
  if (typeof CompressionStream === "function") {
    const deflated = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
    bytes = new Uint8Array(await new Response(deflated).arrayBuffer());
    encoding = "deflate";
  }
  const parts = [];
  for (let i = 0; i < bytes.length; i += 0x8000) {  // fromCharCode takes a bounded number of arguments
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)));
  }
  return JSON.stringify({ width, height, encoding, data: btoa(parts.join("")) });
}

function predictUrl() {
  return "/api/predict" + (model ? "?model=" + encodeURIComponent(model) : "");
}

// One request at a time: a change made while one is out is sent when it comes back (latest only).
async function predictDrawing() {
  if (inFlight) { again = true; return; }
  if (strokes.length === 0 && !current) { show(null, version); return; }
  inFlight = true;
  const asked = version;
  try {
    const response = await fetch(predictUrl(), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: await canvasJSON(true) });
    const result = await response.json();
    if (!response.ok) throw new Error(result.detail || response.statusText);
    if (strokes.length || current) show(result, asked);  // a canvas cleared meanwhile stays empty
    setStatus("");
  } catch (error) {
    setStatus(String(error.message || error), true);
  } finally {
    inFlight = false;
    if (again) { again = false; predictDrawing(); }
  }
}

function show(result, forVersion) {
  const empty = !result || result.digit === null;
  digitEl.textContent = empty ? "–" : String(result.digit);
  const probabilities = empty ? new Array(10).fill(0) : result.probabilities;
  confidenceEl.textContent = empty ? (result ? "nothing drawn" : "") : `${(100 * probabilities[result.digit]).toFixed(1)}% sure`;
  bars.forEach((bar, d) => {
    const p = probabilities[d];
    bar.querySelector(".fill").style.height = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".pct").textContent = p >= 0.005 ? `${Math.round(100 * p)}%` : "";
    bar.classList.toggle("best", !empty && d === result.digit);
  });
  const image = previewCtx.createImageData(28, 28);
  if (result && result.input28) {
    result.input28.forEach((row, y) => row.forEach((v, x) => {
      const i = 4 * (28 * y + x);
      image.data[i] = image.data[i + 1] = image.data[i + 2] = v;
      image.data[i + 3] = 255;
    }));
  }
  previewCtx.putImageData(image, 0, 0);
  const isCurrent = forVersion === version;
  digitEl.dataset.current = String(isCurrent);
  digitEl.classList.toggle("stale", !isCurrent);
}

function setStatus(text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", isError);
}

upload.addEventListener("change", async () => {
  const file = upload.files[0];
  if (!file) return;
  strokes = []; current = null; redraw();
  clearTimeout(timer);
  markStale();
  const asked = version;
  setStatus(`reading ${file.name}…`);
  const form = new FormData();
  form.append("image", file);
  try {
    const response = await fetch(predictUrl(), { method: "POST", body: form });
    const result = await response.json();
    if (!response.ok) throw new Error(result.detail || response.statusText);
    show(result, asked);
    setStatus(result.digit === null ? `${file.name}: no digit found` : `photo: ${file.name}`);
  } catch (error) {
    setStatus(String(error.message || error), true);
  }
});

function shape(info) {  // 784-800-800-10 for an all-dense network, else its arch spec
  return info.sizes ? info.sizes.join("-") : info.arch;
}

function percent(accuracy) {
  return accuracy == null ? "?" : `${(100 * accuracy).toFixed(2)}%`;
}

function describe(info) {  // the selector's line: name, shape and accuracy
  const name = info.name.replace(/\/model\.safetensors/g, "");
  if (info.members) return `${name} (the mean of ${info.members.length})`;
  return `${name} — ${shape(info)}, ${percent(info.test_accuracy)}`;
}

function showModel(info) {
  const rows = info.members ? [  // a committee: what it is, then one line per member
    ["committee", `${info.members.length} models; it reads the mean of their probabilities`],
    ...info.members.map((m, k) => [`member ${k + 1}`, describe(m)]),
    ["parameters", info.parameters.toLocaleString("en")],
  ] : [
    ["architecture", `${shape(info)} (${info.activation})`],
    ["parameters", info.parameters.toLocaleString("en")],
    ["test accuracy", info.test_accuracy == null ? "not recorded" : percent(info.test_accuracy)],
    ["epochs", info.epochs ?? "?"],
    ["trained on", info.data ?? "?"],
    ...(info.pretrained ? [["shipped", `with mnistlab: ${info.pretrained}`]] : []),
  ];
  modelInfo.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    return [dt, dd];
  }));
}

async function loadModels() {
  try {
    const response = await fetch("/api/models");
    const list = await response.json();
    modelSelect.replaceChildren(...list.map((info) => {
      const option = document.createElement("option");
      option.value = info.name;
      option.textContent = describe(info);
      option.selected = info.default;
      return option;
    }));
    const chosen = list.find((info) => info.default) || list[0];
    if (chosen) showModel(chosen);
  } catch (error) {
    setStatus(`could not list the models: ${error.message || error}`, true);
  }
}

modelSelect.addEventListener("change", async () => {
  model = modelSelect.value;
  try {
    const response = await fetch("/api/model?model=" + encodeURIComponent(model));
    const info = await response.json();
    if (!response.ok) throw new Error(info.detail || response.statusText);
    showModel(info);
    changed(0);
  } catch (error) {
    setStatus(String(error.message || error), true);
  }
});

show(null, version);
loadModels();
