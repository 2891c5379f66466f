// The layer scrubber: token chips showing each layer's prediction, confidence stripes, tooltip.
// Scrubbing touches only the chips whose prediction changes; no server round trip.

import { pct, rampColor, rankConfidence, tokenHTML } from "./format.js";

export class Scrubber {
  /**
   * @param {HTMLElement} el  container of the chips
   * @param {HTMLElement} tip tooltip element
   * @param {(id:number)=>string|undefined} text token table lookup
   * @param {{onSelect:(pos:number, add:boolean)=>void}} hooks
   */
  constructor(el, tip, text, hooks) {
    this.el = el;
    this.tip = tip;
    this.text = text;
    this.hooks = hooks;
    this.trace = null;
    this.layer = 0;
    this.chips = [];
    this.marks = [];
    this.shown = new Int32Array(0); // id currently displayed per chip (-2 = none)
    this.selected = new Set();
    this.hover = -1;
    el.addEventListener("mouseover", (e) => this.#hoverAt(e));
    el.addEventListener("mouseleave", () => this.#hideTip());
    el.addEventListener("click", (e) => {
      const chip = e.target.closest(".tok");
      if (chip) this.hooks.onSelect(+chip.dataset.pos, e.shiftKey);
    });
  }

  /** Show a (possibly still streaming) trace's tokens. */
  setTrace(trace) {
    this.trace = trace;
    this.el.textContent = "";
    this.chips = [];
    this.marks = [];
    this.shown = new Int32Array(0);
    this.syncTokens();
  }

  /** Add chips for tokens that arrived since the last call. */
  syncTokens() {
    const tr = this.trace;
    const frag = document.createDocumentFragment();
    for (let t = this.chips.length; t < tr.ids.length; t++) {
      const chip = document.createElement("span");
      chip.className = "tok" + (t >= tr.nPrompt ? " gen" : "") + (t === tr.nPrompt ? " first-gen" : "");
      chip.dataset.pos = t;
      chip.innerHTML = `<span class="in">${tokenHTML(this.text(tr.ids[t]))}</span>` +
        '<span class="out none">…</span><span class="stripe"><i class="mk"></i></span>';
      chip.classList.toggle("sel", this.selected.has(t));
      this.chips.push(chip);
      this.marks.push(chip.children[2].firstChild);
      frag.appendChild(chip);
    }
    this.el.appendChild(frag);
    if (this.shown.length !== this.chips.length) {
      const s = new Int32Array(this.chips.length).fill(-2);
      s.set(this.shown.subarray(0, Math.min(this.shown.length, s.length)));
      this.shown = s;
    }
  }

  /** Repaint the predictions for `layer` (only chips whose token or status changed). */
  setLayer(layer) {
    this.layer = layer;
    const tr = this.trace;
    if (!tr) return;
    const left = `${(((layer + 0.5) / tr.nLayers) * 100).toFixed(2)}%`;
    for (const mk of this.marks) mk.style.left = left;
    if (!tr.ready(layer)) return;
    const T = Math.min(tr.T, this.chips.length);
    for (let t = 0; t < T; t++) {
      const id = tr.top(layer, t);
      const fin = tr.top(tr.last, t);
      const key = id === fin ? id : -3 - id; // encodes "same/changed" with the id
      if (this.shown[t] === key) continue;
      this.shown[t] = key;
      const out = this.chips[t].children[1];
      out.innerHTML = tokenHTML(this.text(id));
      out.className = id === fin ? "out same" : "out changed";
    }
    if (this.hover >= 0) this.#renderTip(this.hover);
  }

  /** Force a full repaint (after new layers arrive). */
  invalidate() {
    this.shown.fill(-2);
    this.setLayer(this.layer);
  }

  /** Recolour every stripe from the layers received so far. */
  paintStripes() {
    const tr = this.trace;
    if (!tr || !tr.T) return;
    const L = tr.nLayers;
    const w = 100 / L;
    for (let t = 0; t < Math.min(tr.T, this.chips.length); t++) {
      const stops = [];
      for (let l = 0; l < L; l++) {
        const c = tr.have[l] ? rampColor(rankConfidence(tr.at("final_rank", l, t))) : "#eceef2";
        stops.push(`${c} ${(l * w).toFixed(2)}% ${((l + 1) * w).toFixed(2)}%`);
      }
      this.chips[t].children[2].style.background = `linear-gradient(to right, ${stops.join(",")})`;
    }
  }

  setSelected(positions) {
    this.selected = new Set(positions);
    this.chips.forEach((c, t) => c.classList.toggle("sel", this.selected.has(t)));
  }

  #hoverAt(e) {
    const chip = e.target.closest(".tok");
    if (!chip) return;
    this.hover = +chip.dataset.pos;
    this.#renderTip(this.hover);
    const r = chip.getBoundingClientRect();
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    let x = Math.min(r.left, window.innerWidth - tw - 8);
    let y = r.bottom + 8;
    if (y + th > window.innerHeight - 8) y = r.top - th - 8;
    this.tip.style.left = `${Math.max(8, x)}px`;
    this.tip.style.top = `${Math.max(8, y)}px`;
  }

  #hideTip() {
    this.hover = -1;
    this.tip.hidden = true;
  }

  #renderTip(t) {
    const tr = this.trace;
    const l = this.layer;
    const name = (id) => `<code>${tokenHTML(this.text(id))}</code>`;
    // a sub-layer lens (tr.stops) names its stops by label ("b12·attn"), the lens by number
    const at = (x) => (tr.stops ? tr.layerNames[x] : `layer ${x}`);
    const kind = t >= tr.nPrompt ? "generated" : "prompt";
    let html = `<h4>position ${t} · ${kind} token ${name(tr.ids[t])}</h4>`;
    if (!tr.T || !tr.have[l]) {
      html += '<div class="muted">this layer has not arrived yet</div>';
    } else {
      const rows = [];
      for (let i = 0; i < Math.min(3, tr.k); i++) {
        const p = tr.topP(l, t, i);
        rows.push(`<tr><td>${name(tr.top(l, t, i))}</td><td class="p">${pct(p)}` +
          `<span class="bar" style="width:${Math.round(p * 48)}px"></span></td></tr>`);
      }
      html += `<div>${tr.stops ? at(l) : `Layer ${l}`} predicts next:</div><table>${rows.join("")}</table>`;
      const nb = [l - 1, l + 1].filter((x) => x >= 0 && x < tr.nLayers && tr.have[x]);
      if (nb.length) {
        html += '<div class="sec">' + nb.map((x) =>
          `${at(x)}: ${name(tr.top(x, t))} ${pct(tr.topP(x, t))}`).join("<br>") + "</div>";
      }
      if (tr.have[tr.last]) {
        const fin = tr.top(tr.last, t);
        const rank = tr.at("final_rank", l, t);
        html += `<div class="sec"><span class="final">final: ${name(fin)} ` +
          `${pct(tr.topP(tr.last, t))}</span> · rank here ${rank}` +
          `<br>locks in at ${at(tr.lockInAt(t))}</div>`;
      }
    }
    this.tip.innerHTML = html;
    this.tip.hidden = false;
  }
}
