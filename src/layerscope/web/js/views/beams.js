// Beams and branches: beam search drawn as the tree its beams grew in (click a beam to open it in
// the scrubber as an ordinary trace of its ids), and interactive rollback: pick a token, choose
// another of the model's candidates there (the final layer's top-k at the position before) and
// let the model write on from it; the branches stay side by side, each one openable.

import { escapeHTML, pct, tokenHTML, tokenLabel } from "../core/format.js";
import { View } from "../core/view.js";

const COL = 110; // px per tree depth
const BOX = 92; // px: a token's box
const ROW = 30; // px per tree lane
const MAX_BRANCHES = 8;

class BeamsView extends View {
  id = "beams";
  label = "Beams & branches";
  group = "experiments";
  term = "beam-search";
  description = "Follow several continuations at once (beam search), or pick any token, swap in " +
    "another candidate and let the model write on from there (branching).";
  markup = `
    <form class="beam-form">
      <label class="beam-prompt" data-term="token">Prompt <input id="beam-prompt" type="text"></label>
      <label data-term="beam-search">Beams <input id="beam-width" type="number" class="num"
        min="1" max="16" value="4"></label>
      <label data-term="beam-search">New tokens <input id="beam-length" type="number" class="num" min="1" max="64"
        value="12"></label>
      <label data-term="length-penalty">Length penalty <input id="beam-penalty" type="number"
        class="num" min="0" max="4" step="0.1" value="1"></label>
      <label class="switch" data-term="end-of-sequence"><input type="checkbox" id="beam-eos"
        checked> stop at end of text</label>
      <button type="submit" class="primary" id="beam-run" data-term="beam-search">Run beam search</button>
    </form>
    <p class="muted small">Each step keeps the <i>width</i> most likely continuations, ranked by
      <span data-term="log-probability">log-probability</span> ÷ length<sup>penalty</sup>. Grey
      branches were dropped on the way. Click a beam (its last token, or its row) to open it in the
      scrubber.</p>
    <div class="placeholder" hidden></div>
    <div id="beam-tree" class="beam-tree"></div>
    <table id="beam-list" class="beam-list"></table>

    <h3 class="sub-h" data-term="branching">Branch: change one token and regenerate</h3>
    <p class="muted small">Click a token — in the strip at the top or here — to see what else the
      model considered at that point (its final layer's top predictions), then pick one: the model
      writes on from your choice. Greedy decoding; the branches stay below.</p>
    <div id="branch-text" class="branch-text" aria-label="Tokens of the trace on screen"></div>
    <div id="branch-cands" class="branch-cands"></div>
    <div class="view-bar"><label data-term="branching">Tokens after the swap <input id="branch-n" type="number"
      class="num" min="1" max="64" value="16"></label></div>
    <ol id="branch-list" class="branch-list"></ol>`;

  needs = "trace";
  branches = [];
  pos = null; // the position whose candidates are shown

  python(trace) {
    const prompt = trace?.request?.prompt ?? "The capital of France is";
    const t = Math.max(1, this.pos ?? trace.nPrompt);
    return "import layerscope\nmodel = layerscope.load()\n" +
      `beams = model.beam_search(${JSON.stringify(prompt)}, width=4, length=12)\n` +
      "for b in beams.beams:\n    print(round(b.logprob, 2), b.text)\n" +
      `ids = [${trace.ids.join(", ")}]\n` +
      `# swap the token at position ${t} for another candidate and regenerate\n` +
      `branch = model.branch(ids, position=${t}, token_id=${trace.ids[t] ?? 0}, generate=16)`;
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.onSubmit("Searching…", ctx, async () => {
      const int = (sel, lo, hi, d) => Math.max(lo, Math.min(hi, this.$(sel).valueAsNumber || d));
      const f = await ctx.client.ask({ type: "beams", prompt: this.$("#beam-prompt").value,
        chat: !!ctx.store.reference?.request?.chat, width: int("#beam-width", 1, 16, 4) | 0,
        length: int("#beam-length", 1, 64, 12) | 0,
        length_penalty: int("#beam-penalty", 0, 4, 1), stop_at_eos: this.$("#beam-eos").checked });
      this.#drawBeams(f, ctx);
    });
    const openBeam = (e) => {
      const el = e.target.closest("[data-beam]");
      if (el && this.beams) ctx.run({ type: "trace", ids: this.beams.beams[+el.dataset.beam].ids,
        lens_top_k: 5 });
    };
    this.$("#beam-tree").addEventListener("click", openBeam);
    this.$("#beam-list").addEventListener("click", openBeam);
    this.$("#beam-tree").addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openBeam(e); }
    });
    this.$("#branch-text").addEventListener("click", (e) => {
      const chip = e.target.closest("[data-pos]");
      if (chip) ctx.select([+chip.dataset.pos]);
    });
    this.$("#branch-cands").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-id]");
      if (b) this.#branch(ctx, +b.dataset.id);
    });
    this.$("#branch-list").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-open]");
      if (b) ctx.run({ type: "trace", ids: this.branches[+b.dataset.open].ids, lens_top_k: 5 });
    });
  }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    const input = this.$("#beam-prompt");
    const ref = ctx.store.reference;
    if (!input.value && ref?.request?.prompt) input.value = ref.request.prompt;
    if (!trace.complete) return;
    this.#drawText(trace, ctx);
    this.onSelect(ctx.selected, ctx);
  }

  onSelect(positions, ctx) {
    const tr = ctx.trace;
    if (!tr?.complete) return;
    const t = positions?.[0];
    this.#markText(t);
    if (t === undefined || t < 1 || t >= tr.ids.length) {
      this.pos = null;
      this.$("#branch-cands").innerHTML = '<span class="muted small">Pick a token after the ' +
        "first one.</span>";
      return;
    }
    this.pos = t;
    this.load(ctx, { type: "cell", trace_id: tr.traceId, layer: tr.last, position: t - 1, k: 10 },
      "Reading the candidates…", (f) => this.#drawCandidates(f, tr, t, ctx));
  }

  // ------------------------------------------------------------------ beam search
  #drawBeams(f, ctx) {
    this.beams = f;
    const text = ctx.text;
    const kids = new Map();
    for (const n of f.tree) {
      if (!kids.has(n.parent)) kids.set(n.parent, []);
      kids.get(n.parent).push(n);
    }
    const leafOf = new Map(f.beams.map((b, i) => [b.node, i])); // a beam's last node -> beam
    // lanes: depth-first, best first; a node sits in the lane of its best child
    const pos = new Map();
    let lane = 0, depthMax = 0;
    const place = (n, depth) => {
      depthMax = Math.max(depthMax, depth);
      const ch = (kids.get(n.id) ?? []).sort((a, b) => b.cum_logprob - a.cum_logprob);
      if (!ch.length) pos.set(n.id, { x: depth, y: lane++ });
      else {
        ch.forEach((c) => place(c, depth + 1));
        pos.set(n.id, { x: depth, y: pos.get(ch[0].id).y });
      }
    };
    const root = f.tree.find((n) => n.parent === null);
    place(root, 0);
    const W = (depthMax + 1) * COL + 10, H = Math.max(1, lane) * ROW + 6;
    const xy = (id) => { const p = pos.get(id); return [p.x * COL, p.y * ROW + ROW / 2 + 3]; };
    const kept = (n) => (n.beam_ranks.length ? "kept" : "dropped");
    const parts = [];
    for (const n of f.tree) {
      if (n === root) continue;
      const [x, y] = xy(n.id);
      const [px, py] = xy(n.parent);
      const x0 = n.parent === root.id ? COL - 12 : px + BOX;
      parts.push(`<path class="edge ${kept(n)}" d="M${x0},${py} C${x0 + 14},${py} ` +
        `${x - 14},${y} ${x},${y}"/>`);
    }
    let prompt = ""; // the prompt's last tokens that fit before the tree
    for (let i = f.prompt.length - 1; i >= 0; i--) {
      const tok = tokenLabel(text(f.prompt[i]), 99);
      if (prompt && prompt.length + tok.length > 11) { prompt = `…${prompt}`; break; }
      prompt = tok + prompt;
    }
    const [, ry] = xy(root.id);
    parts.push(`<text class="root" x="${COL - 16}" y="${ry + 4}" text-anchor="end">` +
      `${escapeHTML(prompt)}</text>`);
    for (const n of f.tree) {
      if (n === root) continue;
      const [x, y] = xy(n.id);
      const beam = leafOf.get(n.id);
      const attrs = beam === undefined ? "" : ` data-beam="${beam}" tabindex="0" role="button"` +
        ` aria-label="Open beam ${beam + 1} in the scrubber"`;
      parts.push(`<g class="node ${kept(n)}${beam === undefined ? "" : " leaf"}` +
        `${n.finished ? " eos" : ""}"${attrs}><title>${escapeHTML(tokenLabel(text(n.token_id), 30))}` +
        `: log p ${n.logprob.toFixed(2)}, running total ${n.cum_logprob.toFixed(2)}` +
        `${beam === undefined ? "" : ` — beam ${beam + 1}: click to open`}</title>` +
        `<rect x="${x}" y="${y - 11}" width="${BOX}" height="22" rx="5"/>` +
        `<text x="${x + 5}" y="${y + 4}">${escapeHTML(tokenLabel(text(n.token_id), 7))}</text>` +
        `<text class="lp" x="${x + BOX - 4}" y="${y + 4}" text-anchor="end">` +
        `${n.cum_logprob.toFixed(1)}</text></g>`);
    }
    this.$("#beam-tree").innerHTML = `<svg width="${W}" height="${H}" ` +
      `aria-label="Beam search tree: each box is a token and the running log-probability">` +
      `${parts.join("")}</svg>`;
    const rows = f.beams.map((b, i) => {
      const gen = b.ids.slice(f.prompt.length).map((id) => tokenHTML(text(id))).join("");
      return `<tr data-beam="${i}" title="Open this beam in the scrubber"><td>${i + 1}</td>` +
        `<td class="txt">${gen}</td><td class="num">${b.logprob.toFixed(2)}</td>` +
        `<td class="num">${b.score.toFixed(3)}</td><td>${b.finished ? "ended" : ""}</td>` +
        `<td><button type="button" class="link" data-beam="${i}" data-term="trace">Open</button>` +
        "</td></tr>";
    });
    this.$("#beam-list").innerHTML = "<thead><tr><th>#</th><th>continuation</th>" +
      '<th data-term="log-probability">log p</th><th title="log p ÷ length^penalty">score</th>' +
      "<th></th><th></th></tr></thead>" + `<tbody>${rows.join("")}</tbody>`;
  }

  // ------------------------------------------------------------------ branching
  #drawText(tr, ctx) {
    this.$("#branch-text").innerHTML = tr.ids.map((id, t) =>
      `<span class="bt${t >= tr.nPrompt ? " gen" : ""}" data-pos="${t}" title="position ${t}">` +
      `${tokenHTML(ctx.text(id))}</span>`).join("");
    this.shownTrace = tr;
  }

  #markText(t) {
    for (const el of this.root.querySelectorAll("#branch-text .bt")) {
      el.classList.toggle("sel", +el.dataset.pos === t);
    }
  }

  #drawCandidates(f, tr, t, ctx) {
    const now = tr.ids[t];
    const btns = f.ids.map((id, i) => `<button type="button" data-id="${id}" data-term="branching"` +
      ` class="cand` +
      `${id === now ? " now" : ""}" title="${id === now ? "the token the text has now" :
        "branch here with this token"}"><code>${tokenHTML(ctx.text(id))}</code> ` +
      `<span class="p">${pct(f.probs[i])}</span></button>`);
    this.$("#branch-cands").innerHTML = `<span class="muted small">At position ${t} the model ` +
      `considered (after <code>${tokenHTML(ctx.text(tr.ids[t - 1]))}</code>):</span> ` +
      btns.join("");
  }

  async #branch(ctx, tokenId) {
    const tr = ctx.trace, t = this.pos;
    if (!tr?.complete || t === null) return;
    const n = Math.max(1, Math.min(64, this.$("#branch-n").valueAsNumber | 0 || 16));
    this.note("Writing on from your token…");
    try {
      const f = await ctx.client.ask({ type: "branch", ids: tr.ids, position: t,
        token_id: tokenId, generate: n });
      this.note("");
      this.branches.unshift(f);
      this.branches.length = Math.min(this.branches.length, MAX_BRANCHES);
      this.#drawBranches(ctx);
    } catch (err) {
      this.note("");
      ctx.error(err);
    }
  }

  #drawBranches(ctx) {
    const text = ctx.text;
    this.$("#branch-list").innerHTML = this.branches.map((b, i) => {
      const plain = (ids) => escapeHTML(ids.map((id) => text(id) ?? "").join("")
        .replace(/\n+/g, " ↵ "));
      const before = plain(b.ids.slice(Math.max(0, b.position - 6), b.position));
      const after = plain(b.ids.slice(b.position + 1));
      return `<li class="branch"><span class="pre">…${before}</span><mark>` +
        `${plain([b.token_id])}</mark><span class="post">${after}</span> ` +
        `<span class="muted small">(position ${b.position}, was <code>` +
        `${tokenHTML(text(b.was_id))}</code>)</span> <button type="button" class="link" ` +
        'data-term="trace" ' +
        `data-open="${i}">Open in the scrubber</button></li>`;
    }).join("");
  }
}

export default new BeamsView();
