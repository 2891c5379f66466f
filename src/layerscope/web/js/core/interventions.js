// Intervention objects of the protocol: building the one a patch-sweep cell stands for, and
// describing a run's list in one line for a person.

import { tokenLabel } from "./format.js";

// Lens layer h_0 is the input of block 0; h_l (l >= 1) is the output of block l - 1.
const lensPoint = (layer) => (layer === 0 ? { point: "resid_pre", block: 0 }
  : { point: "resid_post", block: layer - 1 });
const lensLayer = (iv) => (iv.point === "resid_pre" ? iv.block
  : iv.point === "resid_post" ? iv.block + 1 : null);

/** The patch that re-runs a sweep's corrupted prompt with one (lens layer, position) clean. */
export function sweepCellPatch(sweep, layer, position) {
  return { kind: "patch", ...lensPoint(layer), positions: [position], heads: null,
    source_ids: sweep.clean };
}

/** One line saying how a run with these interventions differs from a plain one ("" if none). */
export function describeRun(interventions, ids, text) {
  return interventions.map((iv) => describe(iv, ids, text)).join("; ");
}

function describe(iv, ids, text) {
  const l = lensLayer(iv);
  let where = l === null ? `${iv.point} of block ${iv.block}` : `layer ${l}`;
  if (iv.heads) where += ` (heads ${iv.heads.join(", ")})`;
  const one = iv.positions?.length === 1 ? iv.positions[0] : null;
  const tok = (list) => tokenLabel(text(list[one]), 16);
  where += iv.positions === null ? " at every position"
    : ` at position${one === null ? "s" : ""} ${iv.positions.join(", ")}`;
  if (iv.kind === "patch") {
    const swap = one === null ? "" : ` (${tok(iv.source_ids)} in place of ${tok(ids)})`;
    return `Patched run: ${where} copied from the clean prompt${swap}.`;
  }
  if (iv.kind === "ablate") return `Ablated run: ${where} set to ${iv.mode}.`;
  return `Steered run: ${where} pushed along a vector (scale ${iv.scale}).`;
}
