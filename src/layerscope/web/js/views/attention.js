// Attention: one head's pattern (queries × keys) with token labels, windowed on long inputs, and
// a blocks × heads grid of per-head statistics where a click opens that head.

import { draw, drawGrid, layout, onCellClick, positionLabels, relayout } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";

const WINDOWS = [32, 64, 128, 256, 512]; // 512 is also the most one request may ask
const WHOLE = 128; // longer inputs open on a window of this size (the last positions)
const BLUES = [[0, "#f7fbff"], [0.3, "#9ecae1"], [0.7, "#3182bd"], [1, "#08306b"]];
export const STAT_LABELS = {
  entropy: "mean entropy (nats)", previous_token: "previous-token score",
  duplicate_token: "duplicate-token score", induction: "induction score",
  first_token: "first-token (BOS) score",
};
const statLabel = (name) => STAT_LABELS[name] ?? name.replace(/_/g, " ");

class AttentionView extends View {
  id = "attention";
  label = "Attention";
  group = "inside";
  term = "attention-pattern";
  description = "Where one attention head looks: each row is a token reading, each column a token " +
    "it can read from (earlier ones only), darker is more attention.";
  markup = `
    <div class="view-bar attn-bar">
      <label data-term="block">Block <input type="number" min="0" value="0" class="num" id="attn-block"></label>
      <label data-term="attention-head">Head <input type="number" min="0" value="0" class="num" id="attn-head"></label>
      <label data-term="position">From token <input type="number" min="0" value="0" class="num" id="attn-start"></label>
      <label data-term="attention-pattern">Tokens shown <select id="attn-window">${WINDOWS.map((w) => `<option>${w}</option>`)
        .join("")}</select></label>
      <span class="muted small" id="attn-range"></span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="attn-pattern" class="plot"></div>
    <div class="view-bar attn-bar">
      <label data-term="head-roles">Grid: colour heads by <select id="attn-stat"></select></label>
      <span class="muted small">Every head of every block on this prompt; click a cell to open that
        head above.</span>
    </div>
    <div id="attn-grid" class="plot"></div>`;

  needs = "trace";

  python(trace) {
    return `${retrace(trace)}\nattn = trace.attention  # L tensors [1, H, T, T]\n` +
      "trace.plot_attention(block=0, head=0)\nstats = trace.head_stats()  # {name: [L, H]}";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.focusAt = null;
    this.stats = null;
    for (const id of ["#attn-block", "#attn-head", "#attn-start", "#attn-window"]) {
      this.$(id).addEventListener("change", () => this.#loadPattern());
    }
    this.$("#attn-stat").addEventListener("change", () => this.#drawGrid());
  }

  /** Open `head` of `block` (from another view) the next time this view draws. */
  focus(block, head) { this.focusAt = [block, head]; }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    if (!trace.complete) return this.note("The attention appears once the trace has finished.");
    const info = ctx.client.hello?.model;
    const blk = this.$("#attn-block"), hd = this.$("#attn-head");
    if (info) { blk.max = info.n_blocks - 1; hd.max = info.n_heads - 1; }
    if (this.traceId !== trace.traceId) { // a new trace: a window at its end if it is long
      this.traceId = trace.traceId;
      const T = trace.ids.length;
      const w = T <= WHOLE ? WINDOWS.find((x) => x >= T) ?? 512 : WHOLE;
      this.$("#attn-window").value = String(w);
      this.$("#attn-start").value = String(Math.max(0, T - w));
    }
    if (this.focusAt) {
      [blk.value, hd.value] = this.focusAt.map(String);
      this.focusAt = null;
    }
    this.#loadPattern();
    this.#loadStats();
  }

  #num(id, lo, hi) {
    const el = this.$(id);
    const v = Math.max(lo, Math.min(hi, Number.isFinite(el.valueAsNumber) ? el.valueAsNumber | 0
      : lo));
    el.value = String(v);
    return v;
  }

  #loadPattern() {
    const trace = this.ctx.trace;
    if (!trace?.complete) return;
    const info = this.ctx.client.hello?.model ?? { n_blocks: 1e9, n_heads: 1e9 };
    const T = trace.ids.length;
    const block = this.#num("#attn-block", 0, info.n_blocks - 1);
    const head = this.#num("#attn-head", 0, info.n_heads - 1);
    const w = Math.min(T, +this.$("#attn-window").value);
    const start = this.#num("#attn-start", 0, T - w);
    const end = start + w;
    this.$("#attn-range").textContent = end - start < T
      ? `Showing tokens ${start}–${end - 1} of ${T} (attention to tokens before ${start} is ` +
        "not drawn)." : `All ${T} tokens.`;
    this.load(this.ctx, { type: "attention_pattern", trace_id: trace.traceId, block, head, start,
      end }, "Loading the pattern…", (f) => this.#drawPattern(f, trace));
  }

  #drawPattern(f, trace) {
    const text = this.ctx.text;
    const labels = positionLabels(trace.ids.slice(f.start, f.end), text)
      .map((s, i) => s.replace(/^\d+/, String(f.start + i)));
    const n = labels.length;
    const hover = f.pattern.map((row, q) => row.map((v, k) =>
      `query ${labels[q]}<br>key ${labels[k]}<br>attention ${(v * 100).toFixed(1)}%`));
    const side = Math.min(900, Math.max(340, n * 14 + 140));
    const ticks = n > 64 ? { dtick: Math.ceil(n / 48) } : {};
    draw(this.$("#attn-pattern"), [{
      type: "heatmap", z: f.pattern, x: labels, y: labels, hovertext: hover, hoverinfo: "text",
      colorscale: BLUES, zmin: 0, colorbar: { thickness: 12, title: { text: "attention",
        side: "right" } },
    }], layout({
      height: side, margin: { l: 90, t: 30, b: 90 },
      title: { text: `Block ${f.block} · head ${f.head}: queries (rows) × keys (columns)`,
        font: { size: 13 }, x: 0, xanchor: "left" },
      xaxis: { type: "category", tickangle: -50, automargin: true, title: { text: "key" },
        tickfont: { size: 9 }, ...ticks },
      yaxis: { type: "category", autorange: "reversed", automargin: true,
        title: { text: "query" }, tickfont: { size: 9 }, ...ticks },
    }));
    this.shown = [f.block, f.head];
    this.#markGrid();
  }

  #loadStats() {
    const trace = this.ctx.trace;
    const fresh = () => this.visible && this.ctx.trace === trace;
    this.ctx.query({ type: "head_stats", trace_id: trace.traceId }).then((f) => {
      if (!fresh()) return;
      this.stats = f;
      const sel = this.$("#attn-stat");
      if (sel.options.length !== Object.keys(f.stats).length) {
        sel.replaceChildren(...Object.keys(f.stats).map((k) => new Option(statLabel(k), k)));
        sel.value = "entropy" in f.stats ? "entropy" : Object.keys(f.stats)[0];
      }
      this.#drawGrid();
    }, (err) => fresh() && this.ctx.error(err));
  }

  #drawGrid() {
    const f = this.stats;
    if (!f) return;
    const name = this.$("#attn-stat").value;
    const z = f.stats[name];
    const el = this.$("#attn-grid");
    const hover = z.map((row, b) => row.map((v, h) => `<b>block ${b} · head ${h}</b><br>` +
      Object.entries(f.stats).map(([k, s]) => `${statLabel(k)}: ${s[b][h].toFixed(3)}`)
        .join("<br>")));
    const entropy = name === "entropy";
    drawGrid(el, {
      z, hover, x: z[0].map((_, h) => `H${h}`), rowTitle: "block",
      colorscale: entropy ? "Viridis" : BLUES, zmin: 0, zmax: entropy ? undefined : 1,
      colorbar: { title: statLabel(name) }, rowHeight: 15,
      layout: { xaxis: { title: { text: "head" }, tickangle: 0 }, margin: { t: 10, b: 40 } },
    });
    onCellClick(el, (b, h) => {
      this.$("#attn-block").value = String(b);
      this.$("#attn-head").value = String(h);
      this.#loadPattern();
      this.$("#attn-pattern").scrollIntoView?.({ block: "nearest" });
    });
    this.#markGrid();
  }

  #markGrid() {
    const el = this.$("#attn-grid");
    if (!this.shown || !el._fullLayout) return;
    const [b, h] = this.shown;
    relayout(el, { shapes: [{ type: "rect", xref: "x", yref: "y", x0: h - 0.5, x1: h + 0.5,
      y0: b - 0.5, y1: b + 0.5, line: { color: "#d6322e", width: 2 } }] });
  }
}

export const attentionView = new AttentionView();
export default attentionView;
