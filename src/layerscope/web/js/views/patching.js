// Patching: how much of the clean answer comes back when one (layer, position) of the corrupted
// run is copied from the clean run; a click opens that patched run in the scrubber.

import { pct, plotLabel } from "../core/format.js";
import { sweepCellPatch } from "../core/interventions.js";
import { drawRestored, positionAxis, summaryHTML } from "../core/patching.js";
import { View } from "../core/view.js";

class PatchingView extends View {
  id = "patching";
  label = "Patching";
  group = "experiments";
  term = "activation-patching";
  description = "Run the corrupted prompt with one layer's hidden state at one token copied from " +
    "the clean prompt: the colour shows how much of the clean answer comes back.";
  markup = `
    <form class="patch-form">
      <label data-term="clean-corrupted">Clean prompt <input id="patch-clean" type="text"
        value="When Mary and John went to the store, John gave a drink to"></label>
      <label data-term="clean-corrupted">Corrupted prompt <input id="patch-corrupted" type="text"
        value="When Mary and John went to the store, Mary gave a drink to"></label>
      <button type="submit" class="primary" id="patch-run" data-term="activation-patching">Run patching</button>
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
    const text = ctx.text, tok = (id) => plotLabel(text(id));
    const summary = this.$(".patch-summary");
    summary.innerHTML = summaryHTML(f, text);
    summary.hidden = false;
    const hover = f.restored.map((row, l) => row.map((r, t) =>
      `<b>layer ${l}</b> · position ${t}<br>clean ${tok(f.clean[t])} → corrupted ` +
      `${tok(f.corrupted[t])}<br>p(answer) = ${pct(f.prob[l][t])}` +
      `<br>restored ${(r * 100).toFixed(0)}%<br><i>click to open this run</i>`));
    drawRestored(this.$("#patch"), {
      z: f.restored, hover, x: positionAxis(f, text), rowTitle: "layer",
      open: (layer, pos) => ctx.run({ type: "trace", ids: f.corrupted, lens_top_k: 5,
        interventions: [sweepCellPatch(f, layer, pos)] }),
    });
  }
}

export default new PatchingView();
