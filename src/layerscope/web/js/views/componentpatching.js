// Component patching: copy one component of the clean run (the residual stream at a layer and
// token, one block's attention or MLP output at a token, or one head's output at every token) into
// the corrupted run and see how much of the clean answer comes back; a click opens that run.

import { pct, plotLabel } from "../core/format.js";
import { cellPatch, drawRestored, positionAxis, summaryHTML } from "../core/patching.js";
import { View } from "../core/view.js";

// The components in the order they are drawn: their grid, their axes and their hover line.
const PANELS = [
  { key: "resid", el: "#cp-resid", rowTitle: "layer", colTitle: "position",
    cell: (r, c) => `<b>residual stream h_${r}</b> · position ${c}` },
  { key: "attn_out", el: "#cp-attn", rowTitle: "block", colTitle: "position",
    cell: (r, c) => `<b>block ${r} attention output</b> · position ${c}` },
  { key: "mlp_out", el: "#cp-mlp", rowTitle: "block", colTitle: "position",
    cell: (r, c) => `<b>block ${r} MLP output</b> · position ${c}` },
  { key: "head_out", el: "#cp-heads", rowTitle: "block", colTitle: "head",
    cell: (r, c) => `<b>block ${r} · head ${c}</b> at every position` },
];

class ComponentPatchingView extends View {
  id = "componentpatching";
  label = "Component patching";
  group = "experiments";
  term = "component-patching";
  description = "Copy one part of the clean run (a layer's hidden state, an attention or MLP " +
    "output, one head) into the corrupted run: the colour shows how much of the clean answer " +
    "comes back.";
  markup = `
    <form class="patch-form cp-form">
      <label data-term="clean-corrupted">Clean prompt <input id="cp-clean" type="text"
        value="When Mary and John went to the store, John gave a drink to"></label>
      <label data-term="clean-corrupted">Corrupted prompt <input id="cp-corrupted" type="text"
        value="When Mary and John went to the store, Mary gave a drink to"></label>
      <button type="submit" class="primary" id="cp-run"
        data-term="component-patching">Patch every component</button>
    </form>
    <fieldset class="cp-which"><legend data-term="hook-point">Patch</legend>
      <label data-term="residual-stream"><input type="checkbox" value="resid" checked>
        the residual stream</label>
      <label data-term="attention-output"><input type="checkbox" value="attn_out" checked>
        attention outputs</label>
      <label data-term="mlp"><input type="checkbox" value="mlp_out" checked>
        MLP outputs</label>
      <label data-term="attention-head"><input type="checkbox" value="head_out" checked>
        each head's output</label>
    </fieldset>
    <p class="muted small">Both prompts must have the same number of tokens (differing ones are
      marked *). Each cell is one re-run of the corrupted prompt with that part copied from the
      clean run (<span data-term="activation-patching">activation patching</span>). Click a cell
      to open that run in the scrubber.</p>
    <div class="patch-summary" id="cp-summary" hidden></div>
    <div class="placeholder" hidden></div>
    <div class="cp-grids">
      <section class="cp-panel" id="cp-resid-panel" hidden>
        <h4><span data-term="residual-stream">Residual stream</span> h<sub>l</sub>
          <span class="muted">layer × token</span></h4>
        <div id="cp-resid" class="plot"></div></section>
      <section class="cp-panel" id="cp-attn-panel" hidden>
        <h4><span data-term="attention-output">Attention output</span> (attn_out)
          <span class="muted">block × token</span></h4>
        <div id="cp-attn" class="plot"></div></section>
      <section class="cp-panel" id="cp-mlp-panel" hidden>
        <h4><span data-term="mlp">MLP output</span> (mlp_out)
          <span class="muted">block × token</span></h4>
        <div id="cp-mlp" class="plot"></div></section>
      <section class="cp-panel" id="cp-heads-panel" hidden>
        <h4><span data-term="attention-head">Each head's output</span> (head_out)
          <span class="muted">block × head, all tokens at once</span></h4>
        <div id="cp-heads" class="plot"></div></section>
    </div>`;

  needs = "model";

  python() {
    return "import layerscope\nmodel = layerscope.load()\n" +
      `sweep = model.component_patch_sweep(${JSON.stringify(this.$("#cp-clean").value)},\n` +
      `    ${JSON.stringify(this.$("#cp-corrupted").value)})\n` +
      "sweep.restored['head_out']  # [block, head]: share of the clean answer restored\n" +
      "patch = sweep.cell_patch('head_out', 9, 6)  # one cell as an intervention\n" +
      "run = model.trace(ids=sweep.corrupted_ids, interventions=[patch])";
  }

  mount(root, ctx) {
    super.mount(root);
    this.onSubmit("Patching… (each cell is one run)", ctx, async () => {
      const components = [...this.root.querySelectorAll(".cp-which input:checked")]
        .map((el) => el.value);
      if (!components.length) throw { code: "bad_request", message: "tick at least one part " +
        "of the model to patch" };
      const f = await ctx.client.ask({ type: "component_patch", components,
        clean: this.$("#cp-clean").value, corrupted: this.$("#cp-corrupted").value });
      this.#draw(f, ctx);
    });
  }

  #draw(f, ctx) {
    const text = ctx.text, tok = (id) => plotLabel(text(id));
    const summary = this.$("#cp-summary");
    summary.innerHTML = summaryHTML(f, text);
    summary.hidden = false;
    const positions = positionAxis(f, text);
    for (const p of PANELS) {
      const z = f.restored[p.key];
      this.$(`${p.el}-panel`).hidden = !z;
      if (!z) continue;
      const prob = f.prob?.[p.key];
      const hover = z.map((row, r) => row.map((v, c) => {
        const swap = p.colTitle === "position"
          ? `<br>clean ${tok(f.clean[c])} → corrupted ${tok(f.corrupted[c])}` : "";
        const pr = prob ? `<br>p(answer) = ${pct(prob[r][c])}` : "";
        return `${p.cell(r, c)}${swap}${pr}<br>restored ${(v * 100).toFixed(0)}%` +
          "<br><i>click to open this run</i>";
      }));
      const x = p.colTitle === "position" ? positions : z[0].map((_, h) => `H${h}`);
      drawRestored(this.$(p.el), {
        z, hover, x, rowTitle: p.rowTitle, colTitle: p.colTitle === "head" ? "head" : undefined,
        rowHeight: 13,
        open: (row, col) => ctx.run({ type: "trace", ids: f.corrupted, lens_top_k: 5,
          interventions: [cellPatch(p.key, row, col, f.clean)] }),
      });
    }
  }
}

export default new ComponentPatchingView();
