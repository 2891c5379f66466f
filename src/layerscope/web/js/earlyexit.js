// Early-exit decoding: what the first k layers write, next to what the whole model writes.

import { escapeHTML, tokenHTML } from "./format.js";

export function renderEarly(el, frame, text) {
  const join = (ids) => ids.map((id) => text(id) ?? "").join("");
  const prompt = escapeHTML(join(frame.prompt).slice(-160));
  const early = frame.early.map((id, i) => {
    const s = tokenHTML(text(id));
    return id === frame.full[i] ? s : `<span class="d">${s}</span>`;
  }).join("");
  const full = frame.full.map((id) => tokenHTML(text(id))).join("");
  const same = frame.early.filter((id, i) => id === frame.full[i]).length;
  el.innerHTML = `
    <div class="early-row"><span class="lbl">Prompt (end)</span><span class="txt"><span class="p">${prompt}</span></span></div>
    <div class="early-row"><span class="lbl">First ${frame.layer} of ${frame.n_layers - 1} layers</span><span class="txt" id="early-text">${early}</span></div>
    <div class="early-row"><span class="lbl">Whole model</span><span class="txt">${full}</span></div>
    <div class="early-row"><span class="lbl"></span><span class="muted small">${same} of ${frame.full.length} tokens agree (red: different from the whole model at the same step)</span></div>`;
}
