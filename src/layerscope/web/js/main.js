// App shell: Alpine holds the small reactive state (form, status, current layer); the big arrays
// live in plain objects owned by the view modules so scrubbing never goes through a proxy.

import Alpine from "/static/vendor/alpine.esm.min.js";
import { renderEarly } from "./earlyexit.js";
import { tokenLabel } from "./format.js";
import { renderHeads } from "./heads.js";
import { HeatmapView } from "./heatmap.js";
import { patchSummary, renderPatch } from "./patching.js";
import { Client, socketURL } from "./protocol.js";
import { Scrubber } from "./scrubber.js";
import { TraceData } from "./trace.js";
import { TrajectoryView } from "./trajectory.js";

const client = new Client(socketURL());
const text = (id) => client.text(id);
// Non-reactive holders (never put these on the Alpine component).
const S = { trace: null, main: null, patch: null, scrubber: null, heatmap: null, traj: null,
  headsCache: new Map(), stripeFrame: 0 };

const ERROR_TITLES = { busy: "Server busy.", bad_request: "Cannot run that:",
  not_found: "Expired:", internal: "Something went wrong:" };

Alpine.data("app", () => ({
  conn: "connecting", model: null, maxGenerate: 256,
  prompt: "The Eiffel Tower is located in the city of", chat: false, generate: 12,
  temperature: 0, seed: 0, topK: null,
  running: false, progressLabel: "", error: "", errorTitle: "",
  hasTrace: false, nLayers: 1, layer: 0, nTokens: 0, stableCount: 0, selected: [],
  patched: false, patchedLabel: "",
  view: "heatmap", metric: "final_prob", headsState: "", trajState: "",
  views: [
    { id: "heatmap", label: "Heatmap" }, { id: "heads", label: "Per-head lens" },
    { id: "trajectory", label: "Residual trajectory" }, { id: "patching", label: "Patching" },
    { id: "early", label: "Early exit" },
  ],
  patchClean: "When Mary and John went to the store, John gave a drink to",
  patchCorrupted: "When Mary and John went to the store, Mary gave a drink to",
  patchRunning: false, patchSummary: "",
  earlyLayer: 20, earlyTokens: 16, earlyRunning: false,

  init() {
    const el = (id) => document.getElementById(id);
    S.scrubber = new Scrubber(el("tokens"), el("tooltip"), text,
      { onSelect: (pos, add) => this.select(pos, add) });
    S.heatmap = new HeatmapView(el("heatmap"), el("heatmap-row"), text, (layer, pos) => {
      this.setLayer(layer);
      this.select(pos, false);
    });
    S.traj = new TrajectoryView(el("trajectory"), text);
    const slider = el("layer-slider");
    slider.addEventListener("input", () => this.setLayer(+slider.value));
    document.addEventListener("keydown", (e) => this.onKey(e));
    el("tokens").closest(".scrubber").addEventListener("wheel", (e) => this.onWheel(e),
      { passive: false });
    client.addEventListener("state", (e) => {
      this.conn = e.detail;
      if (e.detail === "open") {
        this.model = client.hello.model;
        this.maxGenerate = client.hello.max_generate;
      }
    });
    client.connect();
    this.$watch("view", () => this.refreshView());
    this.$watch("metric", () => this.drawHeatmap());
    window.layerscope = { setLayer: (l) => this.setLayer(l), state: S }; // for tests and bench
  },

  get modelLine() {
    const m = this.model;
    return m ? `${m.name} · ${m.n_blocks} blocks · ${m.n_heads} heads · ${m.family}` : "";
  },
  get connLabel() {
    return { connecting: "connecting…", open: this.running ? "working" : "ready",
      closed: "disconnected — retrying", busy: "busy" }[this.conn] ?? this.conn;
  },
  get connTitle() { return `WebSocket: ${this.conn}`; },
  get canRun() { return this.conn === "open" && !this.running && this.prompt.trim().length > 0; },
  get layerName() { return this.hasTrace ? `h_${this.layer}` : ""; },
  get selectedLabel() {
    if (!this.hasTrace || !this.selected.length || !S.trace) return "";
    const names = this.selected.map((t) => `${t}:${tokenLabel(text(S.trace.ids[t]), 12)}`);
    return `selected ${names.join(", ")}`;
  },

  // ---------------------------------------------------------------- running a trace
  run() {
    if (!this.canRun) return;
    const gen = Math.max(0, Math.min(this.maxGenerate, this.generate | 0));
    this.stream({ type: "trace", prompt: this.prompt, chat: this.chat, generate: gen,
      temperature: +this.temperature || 0, seed: this.seed | 0,
      top_k: this.topK ? this.topK | 0 : null, lens_top_k: 5 }, null);
  },

  stream(msg, patchedLabel) {
    this.running = true;
    this.error = "";
    this.progressLabel = "Sending…";
    client.request(msg, (f) => this.onFrame(f, patchedLabel));
  },

  onFrame(f, patchedLabel) {
    const tr = S.trace;
    switch (f.type) {
      case "start":
        if (!patchedLabel) S.headsCache.clear();
        S.trace = new TraceData(f);
        S.trace.bytes = f._bytes;
        S.scrubber.setTrace(S.trace);
        this.hasTrace = true;
        this.patched = !!patchedLabel;
        this.patchedLabel = patchedLabel || "";
        this.nLayers = f.n_layers;
        this.nTokens = f.tokens.length;
        this.setLayer(f.n_layers - 1);
        this.progressLabel = msg(f.tokens.length, "prompt token") +
          (patchedLabel || !this.generate ? " · reading layers…" : " · generating…");
        break;
      case "token":
        tr.addToken(f);
        tr.bytes += f._bytes;
        S.scrubber.syncTokens();
        this.nTokens = tr.ids.length;
        this.progressLabel = `Generating… ${tr.ids.length - tr.nPrompt} new tokens`;
        break;
      case "layer":
        tr.addLayer(f);
        tr.bytes += f._bytes;
        this.progressLabel = `Reading layers through the lens… ${tr.nHave} of ${tr.nLayers}`;
        this.paintSoon();
        break;
      case "done":
        tr.finish(f);
        this.running = false;
        this.nTokens = tr.ids.length;
        S.scrubber.paintStripes();
        S.scrubber.invalidate();
        this.updateStats();
        if (!this.selected.length || this.selected.some((t) => t >= tr.T)) {
          this.selected = [Math.max(0, tr.nPrompt - 1)];
        }
        S.scrubber.setSelected(this.selected);
        if (!patchedLabel) S.main = tr;
        this.$nextTick(() => this.refreshView());
        break;
      case "error":
        this.running = false;
        this.showError(f);
        if (S.trace && !S.trace.complete) this.hasTrace = S.main !== null && this.restoreMain();
        break;
    }
  },

  paintSoon() {
    if (S.stripeFrame) return;
    S.stripeFrame = requestAnimationFrame(() => {
      S.stripeFrame = 0;
      S.scrubber.paintStripes();
      S.scrubber.invalidate();
      this.updateStats();
    });
  },

  showError(f) {
    this.errorTitle = ERROR_TITLES[f.code] ?? "Error:";
    this.error = f.message;
    if (f.code === "busy") {
      this.conn = "busy";
      setTimeout(() => { if (this.conn === "busy") this.conn = client.open ? "open" : "closed"; },
        3000);
    }
  },

  restoreMain() {
    if (!S.main) return false;
    S.trace = S.main;
    S.scrubber.setTrace(S.main);
    S.scrubber.paintStripes();
    S.scrubber.setSelected(this.selected);
    this.patched = false;
    this.nLayers = S.main.nLayers;
    this.nTokens = S.main.ids.length;
    this.setLayer(Math.min(this.layer, S.main.last));
    S.scrubber.invalidate();
    this.refreshView();
    return true;
  },

  // ---------------------------------------------------------------- scrubbing
  setLayer(l) {
    const tr = S.trace;
    if (!tr) return;
    l = Math.max(0, Math.min(tr.last, l | 0));
    S.scrubber.setLayer(l);
    const slider = document.getElementById("layer-slider");
    if (+slider.value !== l) slider.value = l;
    this.layer = l;
    this.updateStats();
    S.heatmap.mark(l, this.selected);
    S.traj.mark(l);
  },

  updateStats() {
    const tr = S.trace;
    if (!tr?.T || !tr.have[this.layer] || !tr.have[tr.last]) return;
    let n = 0;
    for (let t = 0; t < tr.T; t++) if (tr.top(this.layer, t) === tr.top(tr.last, t)) n++;
    this.stableCount = n;
  },

  onKey(e) {
    if (!this.hasTrace || e.target.closest("input, textarea, select")) return;
    const step = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1 }[e.key];
    if (step) { this.setLayer(this.layer + step); e.preventDefault(); }
    else if (e.key === "Home") this.setLayer(0);
    else if (e.key === "End") this.setLayer(this.nLayers - 1);
  },

  onWheel(e) {
    if (!this.hasTrace) return;
    e.preventDefault();
    this.wheelAcc = (this.wheelAcc || 0) + e.deltaY;
    const steps = Math.trunc(this.wheelAcc / 50);
    if (steps) { this.wheelAcc -= steps * 50; this.setLayer(this.layer - steps); }
  },

  select(pos, add) {
    let sel = add ? [...this.selected] : [];
    if (add && sel.includes(pos)) sel = sel.filter((t) => t !== pos);
    else sel.push(pos);
    if (!sel.length) sel = [pos];
    this.selected = sel;
    S.scrubber.setSelected(sel);
    S.heatmap.mark(this.layer, sel);
    this.refreshView();
  },

  // ---------------------------------------------------------------- views
  refreshView() {
    if (!S.trace?.complete) return;
    if (this.view === "heatmap") this.drawHeatmap();
    else if (this.view === "heads") this.loadHeads();
    else if (this.view === "trajectory") this.loadTrajectory();
  },

  drawHeatmap() {
    this.$nextTick(() => S.heatmap.render(S.trace, this.metric, this.layer, this.selected));
  },

  async loadHeads() {
    const tr = S.trace, pos = this.selected[0] ?? tr.nPrompt - 1;
    const key = `${tr.traceId}:${pos}`;
    let f = S.headsCache.get(key);
    if (!f) {
      this.headsState = "Computing head contributions…";
      try {
        f = await client.ask({ type: "heads", trace_id: tr.traceId, position: pos });
      } catch (err) { this.headsState = ""; this.showError(err); return; }
      S.headsCache.set(key, f);
    }
    this.headsState = "";
    if (S.trace !== tr) return;
    this.$nextTick(() => renderHeads(document.getElementById("heads"), f, text,
      `${pos} (${tokenLabel(text(tr.ids[pos]))})`));
  },

  async loadTrajectory() {
    const tr = S.trace;
    const positions = this.selected.slice(0, 8);
    this.trajState = "Projecting residual vectors…";
    try {
      const f = await client.ask({ type: "pca", trace_id: tr.traceId, positions });
      this.trajState = "";
      if (S.trace !== tr) return;
      this.$nextTick(() => S.traj.render(f, tr.ids, this.layer));
    } catch (err) { this.trajState = ""; this.showError(err); }
  },

  async runPatch() {
    this.patchRunning = true;
    this.error = "";
    try {
      const f = await client.ask({ type: "patch", clean: this.patchClean,
        corrupted: this.patchCorrupted });
      S.patch = f;
      this.patchSummary = patchSummary(f, text);
      this.$nextTick(() => renderPatch(document.getElementById("patch"), f, text,
        (layer, pos) => this.openPatched(layer, pos)));
    } catch (err) { this.showError(err); }
    this.patchRunning = false;
  },

  openPatched(layer, pos) {
    const f = S.patch;
    if (!f || this.running) return;
    const tok = tokenLabel(text(f.clean[pos]));
    this.stream({ type: "patched_trace", patch_id: f.patch_id, layer, position: pos,
      lens_top_k: 5 }, `Patched run: the corrupted prompt with layer ${layer} at position ${pos} ` +
      `(${tok}) copied from the clean run.`);
    document.querySelector(".scrub-card").scrollIntoView({ behavior: "smooth", block: "start" });
  },

  async runEarly() {
    this.earlyRunning = true;
    this.error = "";
    try {
      const layer = Math.max(0, Math.min(this.nLayers - 1, this.earlyLayer | 0));
      const f = await client.ask({ type: "early_exit", prompt: this.prompt, chat: this.chat,
        layer, generate: Math.max(1, Math.min(64, this.earlyTokens | 0)) });
      renderEarly(document.getElementById("early"), f, text);
    } catch (err) { this.showError(err); }
    this.earlyRunning = false;
  },
}));

function msg(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

Alpine.start();
