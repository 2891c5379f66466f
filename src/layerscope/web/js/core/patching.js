// What the patching views share: the "restored" colour scale, the line that states the answer's
// probability on both prompts, the position axis that marks differing tokens, one restored-fraction
// grid with click-to-open, and the Patch interventions behind the cells of each component.

import { escapeHTML, pct, tokenLabel } from "./format.js";
import { sweepCellPatch } from "./interventions.js";
import { drawGrid, onCellClick, positionLabels } from "./plot.js";

export const RESTORED_SCALE = [[0, "#f7f7fb"], [0.5, "#9e9ac8"], [1, "#3f007d"]];

/** HTML of the line stating the answer and its probability on the clean and corrupted prompt. */
export function summaryHTML(f, text) {
  return `Answer <code>${escapeHTML(tokenLabel(text(f.answer_id), 24))}</code>: ` +
    `${pct(f.p_clean)} on the clean prompt, ${pct(f.p_corrupted)} on the corrupted one. ` +
    'Colour = <span data-term="restored-fraction">share of that gap restored</span>.';
}

/** Position labels of the corrupted prompt; a * marks tokens that differ from the clean one. */
export const positionAxis = (f, text, max = 10) => positionLabels(f.corrupted, text, max)
  .map((s, t) => (f.corrupted[t] !== f.clean[t] ? `${s}*` : s));

/**
 * One grid of restored fractions (0..1): rows are layers or blocks, columns positions or heads.
 * `open(row, col)` runs when a cell is clicked.
 * @param {object} g {z, x, hover, rowTitle, colTitle?, title?, rowHeight?, open}
 */
export function drawRestored(el, g) {
  drawGrid(el, {
    z: g.z, hover: g.hover, x: g.x, rowTitle: g.rowTitle, colorscale: RESTORED_SCALE,
    zmin: 0, zmax: 1, colorbar: { title: "restored", tickformat: ".0%" },
    rowHeight: g.rowHeight ?? 15,
    layout: {
      ...(g.title ? { title: { text: g.title, font: { size: 13 }, x: 0, xanchor: "left" },
        margin: { t: 34 } } : {}),
      ...(g.colTitle ? { xaxis: { title: { text: g.colTitle } } } : {}),
    },
  });
  onCellClick(el, g.open);
}

/**
 * The Patch that re-runs the corrupted prompt with one cell of `component` taken from the clean
 * run: "resid" (row = lens layer, col = position), "attn_out" / "mlp_out" (row = block, col =
 * position) or "head_out" (row = block, col = head, every position).
 */
export function cellPatch(component, row, col, cleanIds) {
  if (component === "resid") return sweepCellPatch({ clean: cleanIds }, row, col);
  const source = { source_ids: cleanIds };
  if (component === "head_out") {
    return { kind: "patch", point: "head_out", block: row, positions: null, heads: [col],
      ...source };
  }
  return { kind: "patch", point: component, block: row, positions: [col], heads: null, ...source };
}
