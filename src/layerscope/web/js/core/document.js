// The trace file (format "layerscope-trace", version 1; see Trace.save in Python): decoding one
// into the TraceData a streamed trace builds, encoding a streamed trace back into one, and finding
// the document in a file a person drops on the page (a .lstrace.json or an exported HTML page).

import { TraceData } from "./trace.js";

export const FORMAT = "layerscope-trace";
export const VERSION = 1;
/** Where an exported HTML page keeps its document: <script type="application/json" id=...>. */
export const EMBED_ID = "layerscope-trace";

const ARRAYS = { int32: Int32Array, float32: Float32Array, float16: null };

/** Typed array of one {dtype, shape, data} entry (data: base64 of little-endian bytes). */
export function decodeArray(entry, name) {
  const Array_ = ARRAYS[entry.dtype];
  if (!Array_) throw new Error(`${name}: unsupported dtype ${entry.dtype}`);
  const bin = atob(entry.data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const n = entry.shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== n * Array_.BYTES_PER_ELEMENT) {
    throw new Error(`${name}: ${bytes.length} bytes do not fill shape [${entry.shape}]`);
  }
  return new Array_(bytes.buffer); // the browsers layerscope supports are all little-endian
}

/** {dtype, shape, data} of a typed array. */
export function encodeArray(array, dtype, shape) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return { dtype, shape, data: btoa(bin) };
}

/** Check a parsed document's format and version (a clear Error otherwise). */
export function checkDocument(doc) {
  if (!doc || doc.format !== FORMAT) throw new Error("this is not a layerscope trace file");
  if (doc.version > VERSION) {
    throw new Error(`written by a newer layerscope (version ${doc.version}); ` +
      `this page reads version ${VERSION}`);
  }
  for (const key of ["model", "tokens", "n_prompt", "layers", "token_text", "statistics", "lens"]) {
    if (doc[key] === undefined) throw new Error(`the trace file has no "${key}"`);
  }
  return doc;
}

/**
 * A finished TraceData from a document. It gets its own token table (`vocab`: the file may come
 * from another model than the server's) and `source` ({name, model}); no server holds its
 * activations, so views that ask the server about it say so instead.
 */
export function traceFromDocument(doc, name = "trace") {
  checkDocument(doc);
  const L = doc.layers.length, T = doc.tokens.length;
  const settings = doc.settings ?? {};
  const start = { n_lens_layers: L, layers: doc.layers, tokens: doc.tokens,
    n_prompt: doc.n_prompt, interventions: settings.interventions ?? [] };
  const tr = new TraceData(start, doc.statistics, { type: "trace", ids: doc.tokens, ...settings });
  tr.T = T;
  tr.columns = {};
  for (const s of doc.statistics) {
    const entry = doc.lens[s.name];
    if (!entry) throw new Error(`the trace file has no lens statistic "${s.name}"`);
    const data = decodeArray(entry, s.name);
    tr.columns[s.name] = { data, k: entry.shape.length > 2 ? entry.shape[2] : 1 };
  }
  tr.k = tr.columns.top_ids.k;
  tr.topIds = tr.columns.top_ids.data;
  tr.topProbs = tr.columns.top_probs.data;
  tr.have.fill(1);
  tr.nHave = L;
  tr.vocab = new Map(Object.entries(doc.token_text).map(([k, v]) => [+k, v]));
  tr.source = { name, model: doc.model, doc };
  tr.extras = doc.extras ?? {};
  tr.finish({ tokens: doc.tokens, trace_id: `file:${name}`, lock_in: doc.lock_in ?? null });
  return tr;
}

/** The document of a finished streamed trace (`hello`: the server's; `text(id)`: token table). */
export function documentFromTrace(tr, hello, text) {
  if (tr.source) return tr.source.doc ?? null;
  const L = tr.nLayers, T = tr.T;
  const m = hello.model;
  const ids = new Set(tr.ids);
  for (const id of tr.topIds) ids.add(id);
  const tokenText = {};
  for (const id of [...ids].sort((a, b) => a - b)) tokenText[id] = text(id) ?? "";
  const lens = {};
  for (const s of tr.statistics) {
    const { data, k } = tr.columns[s.name];
    lens[s.name] = encodeArray(data, s.dtype, k === 1 ? [L, T] : [L, T, k]);
  }
  const r = tr.request;
  return {
    format: FORMAT, version: VERSION,
    model: { name: m.name, n_lens_layers: m.n_lens_layers, n_blocks: m.n_blocks,
      n_heads: m.n_heads, d_model: m.d_model },
    tokens: [...tr.ids], n_prompt: tr.nPrompt, layers: [...tr.layerNames],
    token_text: tokenText,
    settings: { chat: !!r.chat, generate: r.generate ?? 0, temperature: r.temperature ?? 0,
      top_k: r.top_k ?? null, seed: r.seed ?? 0, lens_top_k: tr.k, attention: true,
      raw_ids: !!r.ids, interventions: tr.interventions },
    lock_in: [...(tr.lockIn ?? [])],
    statistics: tr.statistics,
    lens,
    extras: {},
  };
}

/** The document inside a file's text: a trace file, or an exported page that embeds one. */
export function parseTraceFile(textContent) {
  const s = textContent.trimStart();
  if (s.startsWith("{")) return checkDocument(JSON.parse(s));
  const html = new DOMParser().parseFromString(textContent, "text/html");
  const el = html.getElementById(EMBED_ID);
  if (!el) throw new Error("no layerscope trace found in this file");
  return checkDocument(JSON.parse(el.textContent));
}
