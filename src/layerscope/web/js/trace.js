// A trace assembled from streamed frames into flat typed arrays (indexed [layer][position][k]).

export class TraceData {
  constructor(start) {
    this.nLayers = start.n_layers;
    this.layerNames = start.layers;
    this.ids = [...start.tokens];
    this.nPrompt = start.n_prompt;
    this.patched = start.patched || null;
    this.T = 0;
    this.k = 0;
    this.have = new Uint8Array(this.nLayers);
    this.nHave = 0;
    this.traceId = null;
    this.lockIn = null;
    this.timings = null;
    this.bytes = 0;
  }

  addToken(f) { this.ids[f.position] = f.id; }

  addLayer(f) {
    if (!this.T) this.#alloc(f.top_ids.length, f.top_ids[0].length);
    const { T, k } = this, l = f.layer;
    for (let t = 0; t < T; t++) {
      const c = l * T + t;
      for (let i = 0; i < k; i++) {
        this.topIds[c * k + i] = f.top_ids[t][i];
        this.topProbs[c * k + i] = f.top_probs[t][i];
      }
      this.finalRank[c] = f.final_rank[t];
      this.finalProb[c] = f.final_prob[t];
      this.nextRank[c] = f.next_rank[t];
      this.nextProb[c] = f.next_prob[t] ?? NaN;
      this.entropy[c] = f.entropy[t];
      this.klFinal[c] = f.kl_final[t];
    }
    if (!this.have[l]) { this.have[l] = 1; this.nHave++; }
  }

  finish(f) {
    this.ids = f.tokens;
    this.traceId = f.trace_id;
    this.lockIn = f.lock_in;
    this.timings = f.timings;
  }

  #alloc(T, k) {
    this.T = T;
    this.k = k;
    const n = this.nLayers * T;
    this.topIds = new Int32Array(n * k);
    this.topProbs = new Float32Array(n * k);
    this.finalRank = new Int32Array(n);
    this.finalProb = new Float32Array(n);
    this.nextRank = new Int32Array(n);
    this.nextProb = new Float32Array(n);
    this.entropy = new Float32Array(n);
    this.klFinal = new Float32Array(n);
  }

  get complete() { return this.traceId !== null; }
  get last() { return this.nLayers - 1; }
  top(l, t, i = 0) { return this.topIds[(l * this.T + t) * this.k + i]; }
  topP(l, t, i = 0) { return this.topProbs[(l * this.T + t) * this.k + i]; }
  at(name, l, t) { return this[name][l * this.T + t]; }

  /** Lock-in layer of a position, from the final ranks (before `done` arrives too). */
  lockInAt(t) {
    if (this.lockIn) return this.lockIn[t];
    let l = this.last;
    while (l > 0 && this.have[l - 1] && this.at("finalRank", l - 1, t) === 1) l--;
    return l;
  }
}
