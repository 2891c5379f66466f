"""The Learn side: the glossary, guided tours, the knowledge base and its cited chatbot.

Content is data (``content/``); this package loads it, indexes the knowledge base and answers
questions. It sits between the engine and the server: it may use the engine, never the server.

- :mod:`~layerscope.learn.kb` — documents, headings and anchors, chunks (``load_docs``, ``chunks``)
- :mod:`~layerscope.learn.embed` — all-MiniLM-L6-v2 sentence embeddings, offline
- :mod:`~layerscope.learn.index` — hybrid retrieval (``Index.load_or_build().search(q, k, mode)``),
  cached in the user cache
- :mod:`~layerscope.learn.chat` — ``answer(question, context, history, generator)``: sources,
  then the streamed answer (model, endpoint or extractive)
- :mod:`~layerscope.learn.generate`, :mod:`~layerscope.learn.endpoint` — who writes the answer:
  the loaded model in its chat format, or an OpenAI-compatible endpoint
"""
