"""The README's generated sections: the protocol tables (from the registry) and the lens
statistics table (from their declaration).

    python -m layerscope.server.docs README.md     # rewrite the sections in place
    python -m layerscope.server.docs --check README.md

Each section sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from layerscope.engine.statistics import markdown_table
from layerscope.server.handlers import REGISTRY
from layerscope.server.registry import Registry


def _type(t: Any) -> str:
    """A short readable name of a field's type."""
    origin = get_origin(t)
    if origin is Annotated:
        return _type(get_args(t)[0])
    if origin in (Union, types.UnionType):
        members = get_args(t)
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            return "Intervention" if {m.__name__ for m in members} >= {"Patch"} else "object"
        return " \\| ".join(_type(m) for m in members)
    if origin is Literal:
        return " \\| ".join(f'"{v}"' for v in get_args(t))
    if origin is not None:
        args = ", ".join(_type(a) for a in get_args(t))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if t is type(None):
        return "null"
    if isinstance(t, type):
        return t.__name__
    return str(t)


def _fields(cls: type[BaseModel], skip: tuple[str, ...] = ("type", "req")) -> str:
    parts = []
    for name, f in cls.model_fields.items():
        if name in skip:
            continue
        optional = "" if f.is_required() else "?"
        parts.append(f"`{name}{optional}` {_type(f.annotation)}")
    return ", ".join(parts)


def _doc(cls: type[BaseModel]) -> str:
    return " ".join((cls.__doc__ or "").split()).split(". ")[0].rstrip(".").replace("``", "`")


def protocol_tables(registry: Registry = REGISTRY) -> str:
    """Markdown: every request type, then every server frame, with their fields."""
    lines = [
        "| request | fields (`?` = optional) | answered by | ends with | what it does |",
        "|---|---|---|---|---|",
    ]
    for rt in registry:
        info = rt.info()
        lines.append(
            f"| `{rt.type}` | {_fields(rt.schema)} | {', '.join(f'`{f}`' for f in info.frames)} "
            f"| {', '.join(f'`{f}`' for f in info.terminal)} | {_doc(rt.schema)} |"
        )
    lines += ["", "| frame | fields | what it says |", "|---|---|---|"]
    for name, cls in registry.frame_classes().items():
        lines.append(f"| `{name}` | {_fields(cls, ('type',))} | {_doc(cls)} |")
    return "\n".join(lines)


def statistics_table() -> str:
    """Markdown rows of the ``trace --json`` lens keys."""
    return markdown_table()


SECTIONS = {"protocol": protocol_tables, "statistics": statistics_table}


def render(text: str) -> str:
    """``text`` with every generated section brought up to date."""
    for name, make in SECTIONS.items():
        pattern = re.compile(
            rf"(<!-- generated:{name} -->\n).*?(\n<!-- /generated:{name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise ValueError(f"no generated:{name} section")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    old = args.path.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{args.path} is stale: run python -m layerscope.server.docs {args.path}")
            return 1
        return 0
    args.path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
