// Patching: how much of the clean answer comes back when one (layer, position) of the corrupted
// run is copied from the clean run; a click opens that patched run in the scrubber.

import { escapeHTML, pct, tokenLabel } from "../core/format.js";
import { sweepCellPatch } from "../core/interventions.js";
import { drawGrid, onCellClick, positionLabels } from "../core/plot.js";
import { View } from "../core/view.js";

const SCALE = [[0, "#f7f7fb"], [0.5, "#9e9ac8"], [1, "#3f007d"]];

class PatchingView extends View {
  id = "patching";
  label = "Patching";
  description = "Run the corrupted prompt with one layer's hidden state at one token copied from " +
    "the clean prompt: the colour shows how much of the clean answer comes back.";
  markup = `
    <form class="patch-form">
      <label>Clean prompt <input id="patch-clean" type="text"
        value="When Mary and John went to the store, John gave a drink to"></label>
      <label>Corrupted prompt <input id="patch-corrupted" type="text"
        value="When Mary and John went to the store, Mary gave a drink to"></label>
      <button type="submit" class="primary" id="patch-run">Run patching</button>
    </form>
    <p class="muted small">Both prompts must have the same number of tokens (differing ones are
      marked * below). Each cell is one re-run of the corrupted prompt. Click a cell to open that
      run in the scrubber.</p>
    <div class="patch-summary" hidden></div>
    <div id="patch" class="plot"></div>`;

  needs = "model";

  python() {
    return "import layerscope\nmodel = layerscope.load()\n" +
      `sweep = model.patch_sweep(${JSON.stringify(this.$("#patch-clean").value)},\n` +
      `                          ${JSON.stringify(this.$("#patch-corrupted").value)})\n` +
      "sweep.restored  # [layer, position]: share of the clean answer restored";
  }

  mount(root, ctx) {
    super.mount(root);
    this.onSubmit("Patching…", ctx, async () => {
      const f = await ctx.client.ask({ type: "patch_sweep", clean: this.$("#patch-clean").value,
        corrupted: this.$("#patch-corrupted").value });
      this.#draw(f, ctx);
    });
  }

  #draw(f, ctx) {
    const text = ctx.text, tok = (id) => tokenLabel(text(id));
    const summary = this.$(".patch-summary");
    summary.innerHTML = `Answer <code>${escapeHTML(tokenLabel(text(f.answer_id), 24))}</code>: ` +
      `${pct(f.p_clean)} on the clean prompt, ${pct(f.p_corrupted)} on the corrupted one. ` +
      "Colour = share of that gap restored.";
    summary.hidden = false;
    const hover = f.restored.map((row, l) => row.map((r, t) =>
      `<b>layer ${l}</b> · position ${t}<br>clean ${tok(f.clean[t])} → corrupted ` +
      `${tok(f.corrupted[t])}<br>p(answer) = ${pct(f.prob[l][t])}` +
      `<br>restored ${(r * 100).toFixed(0)}%<br><i>click to open this run</i>`));
    const x = positionLabels(f.corrupted, text, 10)
      .map((s, t) => (f.corrupted[t] !== f.clean[t] ? `${s}*` : s)); // * marks differing tokens
    const el = this.$("#patch");
    drawGrid(el, {
      z: f.restored, hover, x, rowTitle: "layer", colorscale: SCALE, zmin: 0, zmax: 1,
      colorbar: { title: "restored", tickformat: ".0%" }, rowHeight: 15,
    });
    onCellClick(el, (layer, pos) => ctx.run({ type: "trace", ids: f.corrupted, lens_top_k: 5,
      interventions: [sweepCellPatch(f, layer, pos)] }));
  }
}

export default new PatchingView();
