// Python snippets for views that need the model: how to compute from a notebook what the view
// would have asked the server for, starting from the trace's own tokens.

/** Lines that load a model and re-run the trace on screen (its token ids, as raw ids). */
export function retrace(trace) {
  const model = trace.source?.model?.name;
  const ids = `[${trace.ids.join(", ")}]`;
  return "import layerscope\n" +
    `model = layerscope.load()  # the model this trace came from${model ? `: ${model}` : ""}\n` +
    `trace = model.trace(ids=${ids}, lens_top_k=${trace.k})`;
}
