"""Exports of a trace for people without layerscope's server: a self-contained HTML page
(:mod:`layerscope.engine.export.html`: ``trace.save_html(path)``, ``trace.show()``)."""
