"""REST routes of the Learn side: the knowledge base's documents, the glossary and the tours.

A document is looked up by its slug among the loaded documents only; nothing from the client
ever becomes a file path. Listing the documents also starts loading the chatbot's index in the
background, so it is usually ready by the first question.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from layerscope.learn import kb
from layerscope.learn.index import shared_index
from layerscope.server.routes import PlainErrorsRoute
from layerscope.server.schemas import error_responses

router = APIRouter(prefix="/api", route_class=PlainErrorsRoute)


@router.get("/docs")
async def docs() -> list[dict[str, str]]:
    """Every document of the knowledge base: slug and title, in slug order."""
    shared_index().start()
    return [{"slug": d.slug, "title": d.title} for d in kb.load_docs()]


@router.get("/docs/{slug}", responses=error_responses(404))
async def doc(slug: str) -> dict[str, Any]:
    """One document: its slug, title, markdown and headings (level, text, anchor)."""
    found = {d.slug: d for d in kb.load_docs()}.get(slug)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no document {slug!r}")
    return {
        "slug": found.slug,
        "title": found.title,
        "markdown": found.markdown,
        "headings": [
            {"level": h.level, "text": h.text, "anchor": h.anchor} for h in found.headings
        ],
    }


@router.get("/glossary")
async def glossary() -> dict[str, Any]:
    """The glossary (``{"terms": [...]}``; no terms if the file is missing)."""
    shared_index().start()
    return kb.load_json("glossary.json") or {"terms": []}


@router.get("/tours", responses=error_responses(404))
async def tours() -> Any:
    """The guided tours, as ``tours.json`` has them (404 if there is none)."""
    data = kb.load_json("tours.json")
    if data is None:
        raise HTTPException(status_code=404, detail="no tours are installed")
    return data
