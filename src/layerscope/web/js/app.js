// The explorer's Alpine component: running traces, the layer scrubber, the views, opening a saved
// trace and downloading one as a page. Served (main.js) it talks to the server through `client`;
// standalone (standalone.js: an exported HTML file, a notebook output) `client` is an offline
// stand-in and the one trace comes from the document the page embeds. Alpine holds only small
// reactive state; traces live in the store (plain objects, never behind a proxy), and the views
// (js/views/) are mounted and told about changes by a ViewHost without being named here.

import { documentFromTrace, parseTraceFile, traceFromDocument } from "./core/document.js";
import { exportHTML, offerDownload } from "./core/export.js";
import { tokenLabel } from "./core/format.js";
import { describeRun } from "./core/interventions.js";
import { LayerControl } from "./core/layer-control.js";
import { bindNavKeys, navGroups, tabIndex } from "./core/nav.js";
import { Scrubber } from "./core/scrubber.js";
import { TraceStore } from "./core/store.js";
import { TraceData } from "./core/trace.js";
import { ViewHost } from "./core/viewhost.js";
import { VIEWS } from "./views/index.js";
import { modelPicker } from "./core/models.js";
import { initTooltips } from "./core/tooltips.js";
import { glossary } from "./learn/api.js";

const ERROR_TITLES = { busy: "Server busy.", bad_request: "Cannot run that:",
  not_found: "Expired:", internal: "Something went wrong:", offline: "Offline:",
  file: "Cannot open that file:" };
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * The component's data object.
 * @param {object} o {Alpine, client (Client or OfflineClient), doc (the embedded trace document,
 *   standalone only), usage (a core/usage.js UsageReporter, served pages only)}
 */
export function explorer({ Alpine, client, doc = null, usage = null }) {
  const store = new TraceStore();
  // A trace opened from a file brings its own token table (it may be another model's).
  const text = (id) => (store.current?.vocab ?? client.vocab).get(id);
  // Non-reactive page parts (never put these on the Alpine component).
  // sub: the sub-layer lens (2L+1 stops) of the trace on screen while the scrubber shows it.
  const P = { scrubber: null, layers: null, views: null, paintFrame: 0, sub: null };
  const offline = !!client.offline;
  // a layer change the person made (slider, keys, wheel, a click on a view): counted for usage
  const byUser = (app, move) => {
    const before = app.layer;
    move();
    if (app.layer !== before) usage?.scrubbed();
  };

  return {
    conn: offline ? "offline" : "connecting", model: null, maxGenerate: 256, offline,
    prompt: "The Eiffel Tower is located in the city of", chat: false, generate: 12,
    temperature: 0, seed: 0, topK: null,
    running: false, progressLabel: "", error: "", errorTitle: "",
    hasTrace: false, nLayers: 1, layer: 0, sublayer: false, sublayerBusy: false, nTokens: 0, stableCount: 0, selected: [],
    variantLabel: "", sourceLabel: "", dragging: false, downloading: false,
    view: VIEWS[0].id,
    views: VIEWS.map(({ id, label }) => ({ id, label })),
    groups: navGroups(VIEWS), // the tabs in their groups (core/nav.js)
    // the header's model picker (core/models.js); a switch drops the old model's traces
    ...modelPicker({ client, forget: () => { store.clear(); P.sub = null; } }),

    init() {
      const el = (id) => document.getElementById(id);
      P.scrubber = new Scrubber(el("tokens"), el("tooltip"), text,
        { onSelect: (pos, add) => this.select(toggle(this.selected, pos, add)) });
      P.layers = new LayerControl(el("layer-slider"), el("tokens").closest(".scrubber"),
        (l) => byUser(this, () => this.scrub(l)));
      P.views = new ViewHost(el("view-panels"), VIEWS, this.context());
      P.views.select(this.view);
      bindNavKeys(el("nav"));
      this.$watch("view", (id) => { P.views.select(id); usage?.viewed(id); });
      P.work = isLearn(this.view) ? null : this.view;
      this.$watch("view", (id) => { if (!isLearn(id)) P.work = id; }); // the chat's context
      client.addEventListener("state", (e) => {
        this.conn = e.detail;
        if (e.detail === "open") {
          this.model = client.hello.model;
          this.maxGenerate = client.hello.max_generate;
        }
      });
      client.addEventListener("error", (e) => this.showError(e.detail));
      if (!offline) this.initModels();
      client.connect();
      if (!offline) initTooltips({ glossary, openTerm: (id) => this.openLearn("glossary", id) });
      if (doc) {
        this.model = doc.model;
        this.open(traceFromDocument(doc, "embedded"));
      } else {
        this._dropTarget();
      }
      window.layerscope = { setLayer: (l) => this.setLayer(l), store }; // for tests and the bench
    },

    /** What views get: the page's services and current state (see core/view.js). */
    context() {
      const app = this;
      return {
        client, store, text, offline,
        get trace() { return store.current; },
        get layer() { return P.sub ? Math.floor(app.layer / 2) : app.layer; },
        openView: (id) => { app.view = id; },
        get selected() { return Alpine.raw(app.selected); },
        setLayer: (l) => byUser(app, () => app.setLayer(l)),
        select: (positions) => app.select(positions),
        query: (msg) => store.answer(msg, (m) => client.ask(m)),
        run: (request) => {
          const done = app.stream(request);
          document.querySelector(".scrub-card").scrollIntoView({ behavior: "smooth" });
          return done; // resolves with the finished trace, rejects with the error frame
        },
        error: (err) => app.showError(err),
        get view() { return app.view; }, // the open view's id
        get workView() { return P.work ?? null; }, // the last open view outside Learn
        get running() { return app.running; },
        // put a finished trace of the store back on screen (e.g. a clean run and its variant)
        show: (trace) => app.showStored(trace),
        back: () => app.back(),
      };
    },

    /** One tab stop per group of tabs: the open view's tab, or the group's first. */
    tabIndex(group, v) { return tabIndex(group, v.id, this.view); },

    get modelLine() {
      const m = this.model;
      if (!m) return "";
      const name = this.models.length && !offline ? "" : `${m.name} · `; // the picker names it
      return `${name}${m.n_blocks} blocks · ${m.n_heads} heads` +
        (m.family ? ` · ${m.family}` : "");
    },
    get connLabel() {
      return { connecting: "connecting…", open: this.running ? "working" : "ready",
        closed: "disconnected — retrying", busy: "busy",
        offline: "saved trace · offline" }[this.conn] ?? this.conn;
    },
    get connTitle() {
      return this.offline ? "No server: everything on this page comes from the saved trace"
        : `WebSocket: ${this.conn}`;
    },
    /** The glossary id of view `id` (its tab's and description's tooltip). */
    termOf(id) { return VIEWS.find((x) => x.id === id)?.term ?? null; },

    /** Whether the open view belongs to the Learn group (shown with or without a trace). */
    get learnOpen() { return isLearn(this.view); },

    /** Open Learn view `id` (glossary, docs, chat, tours), at `arg` (a term or a doc slug). */
    openLearn(id, arg = null) {
      const v = VIEWS.find((x) => x.id === id);
      if (!v) return;
      if (arg != null) v.focus?.(arg);
      this.view = id;
      this.$nextTick(() => document.querySelector(".views-card")?.scrollIntoView({ block: "start" }));
    },

    get canRun() {
      return this.conn === "open" && !this.running && !this.switching &&
        this.prompt.trim().length > 0;
    },
    /** Whether the model picker may switch now (connected, nothing running or loading). */
    get canSwitch() { return this.conn === "open" && !this.running && !this.switching; },
    get layerName() {
      if (!this.hasTrace) return "";
      return this.sublayer && P.sub ? P.sub.layerNames[this.layer] : `h_${this.layer}`;
    },
    /** Whether the sub-layer lens can be asked for (a finished trace the server holds). */
    get canSublayer() {
      return this.hasTrace && !this.offline && !this.running && !this.sourceLabel;
    },
    get selectedLabel() {
      const tr = store.current;
      if (!this.hasTrace || !this.selected.length || !tr) return "";
      const names = this.selected.map((t) => `${t}:${tokenLabel(text(tr.ids[t]), 12)}`);
      return `selected ${names.join(", ")}`;
    },
    /** The saved trace's text (standalone pages show it where the prompt form would be). */
    get savedText() {
      const tr = this.hasTrace && store.current;
      if (!tr) return "";
      return tr.ids.map((id) => text(id) ?? "").join("");
    },

    // -------------------------------------------------------------- running a trace
    run() {
      if (!this.canRun) return;
      const gen = Math.max(0, Math.min(this.maxGenerate, this.generate | 0));
      this.stream({ type: "trace", prompt: this.prompt, chat: this.chat, generate: gen,
        temperature: +this.temperature || 0, seed: this.seed | 0,
        top_k: this.topK ? this.topK | 0 : null, lens_top_k: 5 });
    },

    /** Stream a trace request onto the scrubber; a promise of the finished trace (it rejects
     * with the error frame; nobody needs to await it). */
    stream(request) {
      let settle;
      const done = new Promise((resolve, reject) => { settle = { resolve, reject }; });
      done.catch(() => {}); // a caller that does not wait is not an unhandled rejection
      if (this.running) {
        settle.reject({ code: "busy", message: "a run is already in progress" });
        return done;
      }
      this.running = true;
      this.error = "";
      this.progressLabel = "Sending…";
      let tr = null;
      client.request(request, (f) => {
        if (f.type === "start") tr = this.onStart(f, request);
        else if (f.type === "error") {
          this.onFailed(f, tr);
          settle.reject(f);
        } else {
          this.onFrame(f, tr);
          if (f.type === "done") settle.resolve(tr);
        }
      });
      return done;
    },

    onStart(f, request) {
      const tr = new TraceData(f, client.hello.statistics, request);
      store.begin(tr);
      this.showTrace(tr, tr.last);
      const generating = request.generate > 0;
      this.progressLabel = plural(tr.ids.length, "prompt token") +
        (generating ? " · generating…" : " · reading layers…");
      return tr;
    },

    onFrame(f, tr) {
      switch (f.type) {
        case "token":
          tr.addToken(f);
          P.scrubber.syncTokens();
          this.nTokens = tr.ids.length;
          this.progressLabel = `Generating… ${tr.ids.length - tr.nPrompt} new tokens`;
          break;
        case "layer":
          tr.addLayer(f);
          this.progressLabel = `Reading layers through the lens… ${tr.nHave} of ${tr.nLayers}`;
          this.paintSoon();
          break;
        case "done":
          tr.finish(f);
          store.finish(tr);
          this.running = false;
          this.nTokens = tr.ids.length;
          this.repaint();
          this._defaultSelection(tr);
          this.$nextTick(() => P.views.trace(tr));
          break;
      }
    },

    onFailed(f, tr) {
      this.running = false;
      this.showError(f);
      if (!tr || tr.complete) return;
      store.discard(tr);
      if (store.current) this.showTrace(store.current, Math.min(this.layer, store.current.last));
      else this.hasTrace = false;
    },

    /** Put a trace on the scrubber at `layer` and tell the open view. */
    showTrace(tr, layer) {
      P.sub = null;
      this.sublayer = false;
      P.scrubber.setTrace(tr);
      P.scrubber.paintStripes();
      P.scrubber.setSelected(this.selected);
      this.hasTrace = true;
      this.nLayers = tr.nLayers;
      this.nTokens = tr.ids.length;
      this.variantLabel = describeRun(tr.interventions, tr.ids, text);
      this.sourceLabel = sourceLine(tr, this.offline);
      this.setLayer(layer);
      this.$nextTick(() => P.views.trace(tr));
    },

    /** Put a finished trace the store holds on screen (a plain run or a variant of it). */
    showStored(tr) {
      if (this.running || !tr?.complete || tr === store.current) return;
      store.begin(tr);
      this.showTrace(tr, Math.min(this.layer, tr.last));
    },

    back() {
      if (!store.reference) return;
      store.back();
      this.showTrace(store.current, Math.min(this.layer, store.current.last));
    },

    paintSoon() {
      if (P.paintFrame) return;
      P.paintFrame = requestAnimationFrame(() => {
        P.paintFrame = 0;
        this.repaint();
      });
    },

    repaint() {
      P.scrubber.paintStripes();
      P.scrubber.invalidate();
      this.updateStats();
    },

    showError(f) {
      this.errorTitle = ERROR_TITLES[f.code] ?? "Error:";
      this.error = f.message ?? String(f);
      if (f.code === "busy") {
        this.conn = "busy";
        setTimeout(() => { if (this.conn === "busy") this.conn = client.open ? "open" : "closed"; },
          3000);
      }
    },

    // -------------------------------------------------------------- saved traces
    /** Show a finished trace decoded from a document (a file, or the page's own). */
    open(tr) {
      store.begin(tr);
      store.finish(tr);
      this.error = "";
      this.selected = [];
      this._defaultSelection(tr);
      this.showTrace(tr, tr.last);
    },

    /** Open the file a person picked or dropped: a .lstrace.json, or an exported HTML page. */
    async openFile(file) {
      if (!file) return;
      try {
        this.open(traceFromDocument(parseTraceFile(await file.text()), file.name));
      } catch (err) {
        this.showError({ code: "file", message: `${file.name}: ${err.message ?? err}` });
      }
    },

    /** Download the trace on screen as one self-contained HTML page. */
    async download() {
      const tr = store.current;
      if (!tr?.complete || this.downloading) return;
      this.downloading = true;
      try {
        const d = documentFromTrace(tr, client.hello ?? { model: tr.source.model }, text);
        const words = this.savedText.trim().slice(0, 40);
        const html = await exportHTML(d, `layerscope — ${words || d.model.name}`);
        offerDownload(`${fileStem(words)}.html`, html);
      } catch (err) {
        this.showError({ code: "internal", message: err.message ?? String(err) });
      }
      this.downloading = false;
    },

    _dropTarget() {
      const has = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
      document.addEventListener("dragover", (e) => {
        if (!has(e)) return;
        e.preventDefault();
        this.dragging = true;
      });
      document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) this.dragging = false; });
      document.addEventListener("drop", (e) => {
        if (!has(e)) return;
        e.preventDefault();
        this.dragging = false;
        this.openFile(e.dataTransfer.files[0]);
      });
    },

    // -------------------------------------------------------------- scrubbing and selection
    setLayer(l) {
      const tr = store.current;
      if (!tr) return;
      if (P.sub) return this.scrub(2 * l); // lens layer l is sub-layer stop 2l
      l = Math.max(0, Math.min(tr.last, l | 0));
      P.scrubber.setLayer(l);
      P.layers.show(l, tr.nLayers);
      this.layer = l;
      this.updateStats();
      P.views.layer(l);
    },

    /** The slider asks for `v`: a lens layer, or in sub-layer mode one of the 2L+1 stops. */
    scrub(v) {
      const sub = P.sub;
      if (!sub) return this.setLayer(v);
      v = Math.max(0, Math.min(sub.last, v | 0));
      P.scrubber.setLayer(v);
      P.layers.show(v, sub.nLayers);
      this.layer = v;
      this.updateStats();
      P.views.layer(Math.floor(v / 2)); // views speak lens layers: stop 2l = h_l, 2l+1 = b_l·attn
    },

    /** Switch the scrubber between the lens (L+1 layers) and the sub-layer lens (2L+1 stops). */
    async toggleSublayer() {
      const tr = store.current;
      if (!tr?.complete || this.sublayerBusy) return;
      if (P.sub) {
        const l = Math.floor(this.layer / 2);
        this.showTrace(tr, l);
        return;
      }
      this.sublayerBusy = true;
      try {
        const sub = await sublayerTrace(tr, client);
        if (store.current === tr) {
          P.sub = sub;
          this.sublayer = true;
          this.nLayers = sub.nLayers;
          P.scrubber.setTrace(sub);
          P.scrubber.paintStripes();
          P.scrubber.setSelected(this.selected);
          this.scrub(2 * this.layer);
        }
      } catch (err) {
        this.showError(err);
      }
      this.sublayerBusy = false;
    },

    updateStats() {
      const tr = P.sub ?? store.current;
      if (tr?.ready(this.layer)) this.stableCount = tr.stableAt(this.layer);
    },

    select(positions) {
      this.selected = positions;
      P.scrubber.setSelected(positions);
      P.views.selection(positions);
    },

    /** Select the last prompt token unless the selection still fits `tr`. */
    _defaultSelection(tr) {
      if (!this.selected.length || this.selected.some((t) => t >= tr.T)) {
        this.selected = [Math.max(0, tr.nPrompt - 1)];
      }
      P.scrubber.setSelected(this.selected);
    },
  };
}

/** Whether view `id` is in the Learn group (views that need no trace). */
const isLearn = (id) => VIEWS.find((v) => v.id === id)?.group === "learn";

/** The selection after clicking `pos` (`add`: shift-click toggles it in the selection). */
function toggle(selected, pos, add) {
  if (!add) return [pos];
  const sel = selected.includes(pos) ? selected.filter((t) => t !== pos) : [...selected, pos];
  return sel.length ? sel : [pos];
}

/** The sub-layer lens of finished trace `tr` from the server, as a TraceData of 2L+1 stops. */
function sublayerTrace(tr, client) {
  return new Promise((resolve, reject) => {
    const frames = [];
    client.request({ type: "sublayer_lens", trace_id: tr.traceId, k: tr.k }, (f) => {
      if (f.type === "error") return reject(f);
      if (f.type === "layer") return frames.push(f);
      const sub = new TraceData({ n_lens_layers: f.n_stops, layers: f.labels, tokens: tr.ids,
        n_prompt: tr.nPrompt, interventions: tr.interventions }, tr.statistics, null);
      sub.stops = true; // its layers are sub-layer stops (the scrubber names them by label)
      for (const x of frames) sub.addLayer(x);
      sub.finish({ tokens: tr.ids, trace_id: tr.traceId, lock_in: null });
      resolve(sub);
    });
  });
}

/** The banner line for a trace opened from a file ("" for one the server ran). */
function sourceLine(tr, offline) {
  if (!tr.source) return "";
  const what = offline ? "Saved trace" : `Opened ${tr.source.name}`;
  return `${what} · ${tr.source.model.name} · ${plural(tr.ids.length, "token")}` +
    ` (${tr.nPrompt} prompt) · ${plural(tr.nLayers, "layer")}`;
}

const fileStem = (words) =>
  `layerscope-${words.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 32) || "trace"}`;
