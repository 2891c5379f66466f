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
  if (iv.kind === "ablate" && iv.point == null) return describeComponents(iv);
  if (iv.kind === "steer" && iv.layer != null) return describeSteer(iv, `layer ${iv.layer}`);
  const l = lensLayer(iv);
  let where = l === null ? `${iv.point} of block ${iv.block}` : `layer ${l}`;
  if (iv.heads) where += ` (heads ${iv.heads.join(", ")})`;
  const one = iv.positions?.length === 1 ? iv.positions[0] : null;
  const tok = (list) => tokenLabel(text(list[one]), 16);
  if (iv.kind === "steer") return describeSteer(iv, where);
  where += iv.positions == null ? " at every position"
    : ` at position${one === null ? "s" : ""} ${iv.positions.join(", ")}`;
  if (iv.kind === "patch") {
    const swap = one === null ? "" : ` (${tok(iv.source_ids)} in place of ${tok(ids)})`;
    return `Patched run: ${where} copied from the clean prompt${swap}.`;
  }
  return `Ablated run: ${where} set to ${ablationMode(iv)}.`;
}

function ablationMode(iv) {
  if (iv.mode !== "mean") return "zero";
  return iv.reference_ids ? "its mean over a reference text" : "its mean over the prompt";
}

// The component form: heads as [block, head] pairs, whole attention layers, MLPs, blocks.
function describeComponents(iv) {
  const parts = [];
  if (iv.heads?.length) parts.push(`head${iv.heads.length > 1 ? "s" : ""} `
    + iv.heads.map(([b, h]) => `${b}.${h}`).join(", "));
  const list = (name, xs) => xs?.length && parts.push(`${name} of block${xs.length > 1 ? "s" : ""} `
    + xs.join(", "));
  list("attention", iv.attn);
  list("MLP", iv.mlps);
  if (iv.layers?.length) parts.push(`block${iv.layers.length > 1 ? "s" : ""} ${iv.layers.join(", ")}`
    + " (whole)");
  const at = iv.positions == null ? "" : ` at position${iv.positions.length > 1 ? "s" : ""} `
    + iv.positions.join(", ");
  const how = iv.mode === "mean" ? `replaced by ${ablationMode(iv)}` : "switched off (zero)";
  return `Ablated run: ${parts.join("; ")}${at} ${how}.`;
}

function describeSteer(iv, where) {
  const how = { aligned: "added aligned with the start of the prompt",
    generated: "added from the prompt's last token on", all: "added at every position" };
  const at = iv.positions == null ? (how[iv.where] ?? how.all)
    : `added at position${iv.positions.length > 1 ? "s" : ""} ${iv.positions.join(", ")}`;
  return `Steered run: ${where} pushed along a steering vector (strength ${iv.strength}), ${at}.`;
}
