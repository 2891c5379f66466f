// One trace assembled from its streamed frames. Every lens statistic the server declares in hello
// gets one flat typed array indexed [layer][position][k]; nothing here lists them by hand.

export class TraceData {
  /**
   * @param {object} start      the `start` frame
   * @param {object[]} statistics hello.statistics: [{name, dtype, shape, decimals, meaning}]
   * @param {object} request    the request that produced it (kept to re-run or compare)
   */
  constructor(start, statistics, request) {
    this.nLayers = start.n_lens_layers;
    this.layerNames = start.layers;
    this.ids = [...start.tokens];
    this.nPrompt = start.n_prompt;
    this.interventions = start.interventions;
    this.statistics = statistics;
    this.request = request;
    this.columns = null; // name -> {data, k}, allocated when the first layer frame gives T and k
    this.T = 0;
    this.k = 0;
    this.have = new Uint8Array(this.nLayers);
    this.nHave = 0;
    this.traceId = null;
    this.lockIn = null;
  }

  addToken(f) { this.ids[f.position] = f.id; }

  addLayer(f) {
    if (!this.columns) this.#alloc(f);
    const base = f.layer * this.T;
    for (const s of this.statistics) {
      const { data, k } = this.columns[s.name];
      const rows = f[s.name];
      for (let t = 0; t < this.T; t++) {
        if (k === 1) data[base + t] = rows[t] ?? NaN; // null: unknown (last position's next_prob)
        else for (let i = 0; i < k; i++) data[(base + t) * k + i] = rows[t][i];
      }
    }
    if (!this.have[f.layer]) { this.have[f.layer] = 1; this.nHave++; }
  }

  finish(f) {
    this.ids = f.tokens;
    this.traceId = f.trace_id;
    this.lockIn = f.lock_in;
  }

  #alloc(f) {
    this.T = f[this.statistics[0].name].length;
    this.columns = {};
    for (const s of this.statistics) {
      const k = s.shape.includes(",") ? f[s.name][0].length : 1;
      const Array_ = s.dtype.startsWith("int") ? Int32Array : Float32Array;
      this.columns[s.name] = { data: new Array_(this.nLayers * this.T * k), k };
    }
    this.k = this.columns.top_ids.k;
    this.topIds = this.columns.top_ids.data; // the scrubber reads these per chip per move
    this.topProbs = this.columns.top_probs.data;
  }

  get complete() { return this.traceId !== null; }
  get last() { return this.nLayers - 1; }
  /** Whether layer l and the final layer have both arrived (what a repaint of l needs). */
  ready(l) { return this.T > 0 && this.have[l] === 1 && this.have[this.last] === 1; }
  top(l, t, i = 0) { return this.topIds[(l * this.T + t) * this.k + i]; }
  topP(l, t, i = 0) { return this.topProbs[(l * this.T + t) * this.k + i]; }
  /** Statistic `name` of cell (l, t), element i of a per-cell vector. */
  at(name, l, t, i = 0) {
    const { data, k } = this.columns[name];
    return data[(l * this.T + t) * k + i];
  }

  /** Positions whose top prediction at layer l already equals the final layer's. */
  stableAt(l) {
    let n = 0;
    for (let t = 0; t < this.T; t++) if (this.top(l, t) === this.top(this.last, t)) n++;
    return n;
  }

  /** Lock-in layer of a position, from the final ranks (before `done` arrives too). */
  lockInAt(t) {
    if (this.lockIn) return this.lockIn[t];
    let l = this.last;
    while (l > 0 && this.have[l - 1] && this.at("final_rank", l - 1, t) === 1) l--;
    return l;
  }
}
