// Head roles: TransformerLens-style role scores and attention entropy of every head on the prompt
// on screen, the roles they imply by stated thresholds, and a one-click induction probe.

import { escapeHTML } from "../core/format.js";
import { drawGrid, onCellClick } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";
import { STAT_LABELS, attentionView } from "./attention.js";

const BLUES = [[0, "#f7fbff"], [0.3, "#9ecae1"], [0.7, "#3182bd"], [1, "#08306b"]];
const ROLE_WORDS = {
  previous_token: "previous-token heads (look at the token just before)",
  duplicate_token: "duplicate-token heads (look at earlier copies of the same token)",
  induction: "induction heads (look at the token after an earlier copy: they continue patterns)",
  first_token: "first-token heads (park their attention on the first token)",
};
const label = (k) => STAT_LABELS[k] ?? k.replace(/_/g, " ");
const heads = (list, max = 12) => list.length ? list.slice(0, max).map(([b, h]) => `${b}.${h}`)
  .join(", ") + (list.length > max ? ` … (${list.length})` : "") : "none";

class HeadRolesView extends View {
  id = "roles";
  label = "Head roles";
  group = "inside";
  term = "head-roles";
  description = "What job each attention head seems to do on this prompt — copy the previous " +
    "token, find repeats, continue a pattern (induction) — scored from where it looks.";
  markup = `
    <div class="view-bar">
      <label data-term="head-roles">Colour by role score <select id="roles-stat"></select></label>
      <span class="muted small">Share of a head's attention on the role's cells (TransformerLens
        <code>detect_head</code>, "mul"); entropy in nats (high = spread out). Click a head to open
        its pattern.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="roles-grid" class="plot"></div>
    <div id="roles-list" class="roles-list"></div>
    <form class="early-form probe-form">
      <button type="submit" class="primary" id="probe-run" data-term="induction-probe">Run the induction probe</button>
      <label data-term="induction-probe">Random tokens <input type="number" min="4" max="256" value="50" class="num"
        id="probe-n"></label>
      <label data-term="seed">Seed <input type="number" value="0" class="num" id="probe-seed"></label>
      <span class="muted small">Seeded random tokens, then the same tokens again: an induction head
        predicts the repeat by looking one token past the earlier copy.</span>
    </form>
    <div id="probe-summary" class="roles-list"></div>
    <div id="probe-grid" class="plot"></div>`;

  needs = "trace";

  python(trace) {
    return `${retrace(trace)}\nstats = trace.head_stats()  # {name: numpy [L, H]}\n` +
      "from layerscope.engine.analyses.attention import head_roles, induction_probe\n" +
      "roles = head_roles(stats)\nprobe = induction_probe(model.lens_model)\nprint(probe.top)";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.$("#roles-stat").addEventListener("change", () => this.#draw());
    this.onSubmit("Running the probe…", ctx, async () => {
      const n = Math.max(4, Math.min(256, this.$("#probe-n").valueAsNumber | 0 || 50));
      const seed = this.$("#probe-seed").valueAsNumber | 0;
      this.#drawProbe(await ctx.client.ask({ type: "induction_probe", n_tokens: n, seed }));
    });
  }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    if (!trace.complete) return this.note("The roles appear once the trace has finished.");
    this.load(ctx, { type: "head_stats", trace_id: trace.traceId }, "Scoring the heads…", (f) => {
      this.f = f;
      const sel = this.$("#roles-stat");
      if (sel.options.length !== Object.keys(f.stats).length) {
        sel.replaceChildren(...Object.keys(f.stats).map((k) => new Option(label(k), k)));
        sel.value = "previous_token" in f.stats ? "previous_token" : Object.keys(f.stats)[0];
      }
      this.#draw();
    });
  }

  #open(b, h) {
    attentionView.focus(b, h);
    this.ctx.openView?.("attention");
  }

  #grid(el, z, name, stats) {
    const hover = z.map((row, b) => row.map((_, h) => `<b>block ${b} · head ${h}</b><br>` +
      Object.entries(stats).map(([k, s]) => `${label(k)}: ${s[b][h].toFixed(3)}`).join("<br>")));
    const entropy = name === "entropy";
    drawGrid(el, {
      z, hover, x: z[0].map((_, h) => `H${h}`), rowTitle: "block",
      colorscale: entropy ? "Viridis" : BLUES, zmin: 0, zmax: entropy ? undefined : 1,
      colorbar: { title: label(name) }, rowHeight: 14,
      layout: { xaxis: { title: { text: "head" }, tickangle: 0 }, margin: { t: 10, b: 40 } },
    });
    onCellClick(el, (b, h) => this.#open(b, h));
  }

  #draw() {
    const f = this.f;
    if (!f) return;
    const name = this.$("#roles-stat").value;
    this.#grid(this.$("#roles-grid"), f.stats[name], name, f.stats);
    const rows = Object.entries(f.thresholds).map(([role, thr]) =>
      `<li><b>${f.roles[role]?.length ?? 0}</b> ${escapeHTML(ROLE_WORDS[role] ?? label(role))}` +
      ` — score ≥ ${thr}: <span class="mono">${heads(f.roles[role] ?? [])}</span></li>`);
    this.$("#roles-list").innerHTML = `<p class="muted small">On this prompt (${f.n_tokens} ` +
      "tokens), a head counts as a role when its score reaches the stated threshold " +
      "(block.head):</p>" + `<ul>${rows.join("")}</ul>`;
  }

  #drawProbe(p) {
    const top = p.top.slice(0, 5).map((t) => `${t.block}.${t.head} (${t.score.toFixed(2)})`);
    const thr = p.thresholds.induction, n = p.roles.induction.length;
    this.$("#probe-summary").innerHTML = `<p id="probe-text"><b>Induction probe</b> (${p.n_tokens}` +
      ` random tokens twice, seed ${p.seed}): strongest induction heads ` +
      `<span class="mono">${top.join(", ")}</span>; the median head scores ` +
      `${p.median.toFixed(3)}. ${n} head${n === 1 ? " reaches" : "s reach"} ${thr}. (A perfect ` +
      "induction head scores about 0.5 here: the first copy's rows cannot induct.)</p>";
    this.#grid(this.$("#probe-grid"), p.stats.induction, "induction", p.stats);
  }
}

export default new HeadRolesView();
