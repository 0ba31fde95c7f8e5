// The search-tree viewer: starts a search through the HTTP/JSON API (POST /api/v1/generate/stream, one JSON event per
// line), keeps the tree from its events and redraws it at most once per animation frame, so a 64-particle, 50-step
// search streams without blocking the page. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_WIDTH = 900, MARGIN = 40, LANE = 12, TOP = 24;
const PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79";
let models = [];
let tree = null;       // { steps, nodes: Map(id -> node), order: [] }
let pending = false;   // a redraw is scheduled

function num(v) { return v === undefined || v === null ? 0 : Number(v); }
function setStatus(state, text) { $("status").dataset.state = state; $("status").textContent = text; }

async function loadModels() {
  const response = await fetch("/api/v1/models", { headers: headers() });
  if (!response.ok) { $("error").textContent = `GET /api/v1/models: HTTP ${response.status}`; return; }
  models = ((await response.json()).models || []).filter((m) => m.ready && m.kind === "denoiser");
  $("model").innerHTML = models.map((m) => `<option>${m.name}</option>`).join("");
}

function onModelChange() {
  const model = models.find((m) => m.name === $("model").value);
  if (!model) return;
  if (model.process === "masked") {
    $("condition").value = PUZZLE; $("verifiers").value = "sudoku-constraints"; $("guidance").value = 1;
    $("strategy").value = "best_of_n"; $("params").value = '{"n": 4}'; $("steps").value = 16;
  } else {
    $("condition").value = (model.conditions || ["7"]).includes("7") ? "7" : model.conditions[0];
    $("verifiers").value = "count-verifier"; $("guidance").value = 2;
  }
}

function headers() {
  const h = { "content-type": "application/json" };
  if ($("key").value) h["x-api-key"] = $("key").value;
  return h;
}

function formValues() {
  const names = ["model", "condition", "strategy", "params", "steps", "eta", "guidance", "seed", "verifiers"];
  return Object.fromEntries(names.map((n) => [n, $(n).value]));
}

function requestBody(v) {
  let params;
  try { params = v.params.trim() ? JSON.parse(v.params) : {}; } catch (e) { throw new Error(`parameters: not JSON (${e.message})`); }
  const model = models.find((m) => m.name === v.model);
  const body = {
    model: v.model, condition: v.condition, steps: Number(v.steps), eta: Number(v.eta), guidance: Number(v.guidance),
    seed: String(v.seed), verifiers: v.verifiers.split(",").map((s) => s.trim()).filter((s) => s), candidates: 4, includePng: true,
  };
  body[v.strategy] = params;
  // Several roots of a masked model need token draws to differ.
  if (model && model.process === "masked") body.maskedSampler = { temperature: 0.7 };
  return body;
}

async function start(values) {
  $("error").textContent = "";
  let body;
  try { body = requestBody(values); } catch (e) { $("error").textContent = e.message; return; }
  location.hash = encodeURIComponent(JSON.stringify(values));
  tree = { steps: body.steps, nodes: new Map(), verified: 0, progress: null, result: null };
  $("candidates").innerHTML = "";
  setStatus("running", "running");
  draw();
  try {
    const response = await fetch("/api/v1/generate/stream", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error(`HTTP ${response.status}: ${error.message || response.statusText}`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) apply(JSON.parse(line));
      }
    }
    if (buffer.trim()) apply(JSON.parse(buffer));
    if (!tree.result) throw new Error("the stream ended without a result");
    setStatus("done", "done");
  } catch (e) {
    $("error").textContent = e.message;
    setStatus("failed", "failed");
  }
  schedule();
}

function node(id) {
  let n = tree.nodes.get(id);
  if (!n) {
    n = { id, parent: -1, birth: 0, step: 0, kind: "root", pruned: false, scores: [] };
    tree.nodes.set(id, n);
  }
  return n;
}

function apply(message) {
  if (message.progress) {
    const p = message.progress;
    for (const e of p.events || []) {
      const id = num(e.node), step = num(e.step);
      switch (e.kind) {
        case "KIND_ADVANCED": node(id).step = step; break;
        case "KIND_FORKED": { const n = node(id); n.parent = num(e.parent); n.kind = "fork"; n.birth = step; n.step = step; n.from = step; break; }
        case "KIND_RENOISED": { const n = node(id); const parent = node(num(e.parent)); n.parent = parent.id; n.kind = "renoise"; n.from = parent.step; n.birth = step; n.step = step; break; }
        case "KIND_VERIFIED": node(id).scores.push({ step, score: num(e.score) }); tree.verified++; break;
        case "KIND_PRUNED": prune(id); break;
      }
    }
    tree.progress = p;
  } else if (message.result) {
    tree.result = message.result;
    showCandidates(message.result);
  }
  schedule();
}

function prune(id) {
  node(id).pruned = true;
  for (const n of tree.nodes.values()) if (n.parent === id && !n.pruned) prune(n.id);
}

function schedule() {
  if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); }
}

/** Lanes in depth-first order, children under their parent, so a subtree stays together. */
function lanes() {
  const children = new Map();
  const roots = [];
  for (const n of tree.nodes.values()) {
    if (n.parent >= 0 && tree.nodes.has(n.parent)) {
      if (!children.has(n.parent)) children.set(n.parent, []);
      children.get(n.parent).push(n);
    } else roots.push(n);
  }
  const order = [];
  const visit = (n) => { order.push(n); for (const c of (children.get(n.id) || []).sort((a, b) => a.id - b.id)) visit(c); };
  roots.sort((a, b) => a.id - b.id).forEach(visit);
  return order;
}

function draw() {
  drawAccount();
  const svg = $("tree");
  if (!tree) return;
  const order = lanes();
  const lane = new Map(order.map((n, i) => [n.id, i]));
  const x = (step) => MARGIN + (step * (SVG_WIDTH - 2 * MARGIN)) / Math.max(1, tree.steps);
  const y = (id) => TOP + lane.get(id) * LANE + LANE / 2;
  const scores = order.flatMap((n) => n.scores.map((s) => s.score));
  const lo = Math.min(...scores), hi = Math.max(...scores);
  const colour = (s) => { const t = hi > lo ? (s - lo) / (hi - lo) : 1; return `hsl(${Math.round(t * 120)}, 70%, 40%)`; };
  const parts = [];
  for (let s = 0; s <= tree.steps; s += Math.max(1, Math.round(tree.steps / 10))) {
    parts.push(`<g class="axis"><line x1="${x(s)}" x2="${x(s)}" y1="${TOP - 4}" y2="${TOP + order.length * LANE}"/><text x="${x(s)}" y="12" text-anchor="middle">${s}</text></g>`);
  }
  for (const n of order) {
    const cls = n.pruned ? " pruned" : "";
    if (n.parent >= 0 && lane.has(n.parent)) {
      const x0 = x(n.from ?? n.birth), y0 = y(n.parent), x1 = x(n.birth), y1 = y(n.id);
      parts.push(`<path class="edge ${n.kind}${cls}" d="M${x0},${y0} C${x0 + 6},${y0} ${x1 - 6},${y1} ${x1},${y1}"/>`);
    }
    parts.push(`<line class="node${cls}" data-id="${n.id}" data-kind="${n.kind}" x1="${x(n.birth)}" x2="${Math.max(x(n.step), x(n.birth) + 1)}" y1="${y(n.id)}" y2="${y(n.id)}"/>`);
    for (const v of n.scores) {
      parts.push(`<circle class="verified" data-id="${n.id}" cx="${x(v.step)}" cy="${y(n.id)}" r="4" fill="${colour(v.score)}"><title>node ${n.id} at step ${v.step}: score ${v.score.toFixed(4)}</title></circle>`);
    }
    if (n.scores.length > 0 && order.length <= 80) {
      const last = n.scores[n.scores.length - 1];
      parts.push(`<text class="score" x="${x(n.step) + 7}" y="${y(n.id) + 3}">${last.score.toFixed(3)}</text>`);
    }
  }
  svg.setAttribute("height", TOP + order.length * LANE + 10);
  svg.innerHTML = parts.join("");
  svg.dataset.nodes = order.length;
}

function drawAccount() {
  const rows = [];
  const p = tree && tree.progress, r = tree && tree.result;
  if (r) {
    const c = r.cost || {};
    const saving = num(c.saving) * 100;
    rows.push(["strategy", r.strategy], ["NFE spent", num(c.nfe)], ["NFE independent", num(c.nfeIndependent)],
      ["saving", `${saving.toFixed(1)} %`], ["verifier calls", num(c.verifierCalls)], ["batches", `${num(c.batches)} (mean ${num(c.meanBatchSize).toFixed(1)} rows)`],
      ["queue / compute / wall", `${num(c.queueMs).toFixed(0)} / ${num(c.computeMs).toFixed(0)} / ${num(c.wallMs).toFixed(0)} ms`]);
    if (num(c.calibrationNfe)) rows.push(["calibration NFE", num(c.calibrationNfe)]);
    if (r.forkStep !== undefined) rows.push(["fork step", r.forkStep]);
    if (r.budgetLimited) rows.push(["budget", "limited"]);
  } else if (p) {
    rows.push(["NFE so far", num(p.nfe)], ["verifier calls", num(p.verifierCalls)], ["deepest step", num(p.deepestStep)],
      ["best score", p.bestScore === undefined ? "–" : Number(p.bestScore).toFixed(4)], ["elapsed", `${num(p.elapsedMs).toFixed(0)} ms`]);
  }
  if (p) rows.push(["nodes", num(p.nodes)]);
  if (p && num(p.eventsDropped)) rows.push(["events dropped", num(p.eventsDropped)]);
  $("account").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd data-key="${k}">${v}</dd>`).join("");
}

function showCandidates(result) {
  $("candidates").innerHTML = (result.candidates || []).map((c) => {
    const score = c.score === undefined ? "" : Number(c.score).toFixed(3);
    const picture = c.png ? `<img alt="candidate ${c.path}" src="data:image/png;base64,${c.png}">`
      : `<pre>${(c.text || "").match(/.{1,9}/g)?.join("\n") ?? ""}</pre>`;
    return `<div class="candidate">${picture}<div>${c.path} · ${score}</div></div>`;
  }).join("");
}

$("search").addEventListener("submit", (e) => { e.preventDefault(); start(formValues()); });
$("model").addEventListener("change", onModelChange);
loadModels().then(() => {
  // A link with the form in its hash re-runs that search: same seed, same tree.
  if (location.hash.length > 1) {
    try {
      const values = JSON.parse(decodeURIComponent(location.hash.slice(1)));
      for (const [k, v] of Object.entries(values)) if ($(k)) $(k).value = v;
      start(formValues());
    } catch { /* not a viewer link */ }
  }
});
