// The page's traces by id: the one on screen ("current") and the plain run that variants such as a
// patched run are compared against ("reference"), plus cached answers to questions about each.

export class TraceStore {
  constructor(limit = 8) {
    this.limit = limit; // the server keeps its own LRU; this only bounds the page's memory
    this.byId = new Map(); // trace id -> {trace, answers: Map(request JSON -> frame promise)}
    this.current = null;
    this.reference = null;
  }

  /** A trace that has started streaming goes on screen. */
  begin(trace) { this.current = trace; }

  /** A trace finished streaming: index it; a plain run (no interventions) is the new reference. */
  finish(trace) {
    this.byId.delete(trace.traceId);
    this.byId.set(trace.traceId, { trace, answers: new Map() });
    if (!trace.interventions.length) this.reference = trace;
    for (const [id, { trace: old }] of this.byId) {
      if (this.byId.size <= this.limit) break;
      if (old !== this.current && old !== this.reference) this.byId.delete(id);
    }
  }

  /** A trace failed while streaming: the reference goes back on screen (if there is one). */
  discard(trace) {
    if (this.current === trace) this.current = this.reference;
  }

  /** Forget every trace (the server switched models and dropped them). */
  clear() {
    this.byId.clear();
    this.current = null;
    this.reference = null;
  }

  /** Put the reference trace back on screen. */
  back() { this.current = this.reference; }

  get(traceId) { return this.byId.get(traceId)?.trace; }

  /** Whether the trace on screen is a variant (it ran with interventions). */
  get variant() { return !!this.current?.interventions.length; }

  /**
   * The answer to a one-frame request about a stored trace (`msg.trace_id`), asked once:
   * later calls with an equal request share the first one's promise.
   */
  answer(msg, ask) {
    const entry = this.byId.get(msg.trace_id);
    if (!entry) return ask(msg);
    const key = JSON.stringify(msg);
    let p = entry.answers.get(key);
    if (!p) {
      p = ask(msg);
      entry.answers.set(key, p);
      p.catch(() => entry.answers.delete(key)); // errors are not kept
    }
    return p;
  }
}
