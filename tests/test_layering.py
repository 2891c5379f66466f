"""Layering contracts, checked by import-linter itself (``[tool.importlinter]`` in pyproject.toml).

- layers: ``layerscope.server`` > ``learn`` > ``engine`` > ``models``: a lower layer
  never imports a higher one, directly or through other modules;
- top: models, engine and server never import ``layerscope.cli`` or the top-level package
  (``layerscope/__init__.py``), which sit on top of everything.

import-linter (grimp) reads every import statement, including imports inside functions and under
``if TYPE_CHECKING:``, so a lazy import does not get around a contract.

The negative tests apply the same contracts, renamed, to a tiny package tree written to a
temporary directory, once clean and once per kind of violation, so that a contract which
silently matches nothing (a typo in a module name, a wildcard the installed version does not
expand) fails here instead of passing vacuously.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
TOY = "toyscope"

LINT = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def lint_imports(config: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    """Run the real ``lint-imports`` (this interpreter's import-linter) on ``config``.

    It runs in the config's directory and finds the file itself: the way to name a config file
    changed across versions (``--config`` is deprecated since 2.x, a positional path is newer).
    """
    assert config.name == "pyproject.toml"
    others = [n for n in ("setup.cfg", ".importlinter") if (config.parent / n).exists()]
    assert not others, f"lint-imports would read {others[0]} before {config}"
    try:
        import importlinter  # noqa: F401
    except ImportError:
        pytest.fail("import-linter is not installed: .venv/bin/pip install -e '.[dev]'")
    paths = [str(pythonpath), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    env["NO_COLOR"] = "1"  # plain text to match on (import-linter >= 2.5 colours its report)
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"lint-imports exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def contract_status(proc: subprocess.CompletedProcess[str], name: str) -> str | None:
    """'KEPT' or 'BROKEN' as reported for the contract called ``name``, None if not listed."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    m = re.search(rf"^{re.escape(name)}\s*(KEPT|BROKEN)\s*$", plain, re.M)
    return m.group(1) if m else None


def config() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]


def contract_names() -> dict[str, str]:
    """Contract id -> name, from pyproject.toml."""
    return {c["id"]: c["name"] for c in config()["contracts"]}


# ---------------------------------------------------------------------------------------------
def test_layerscope_keeps_its_layering_contracts():
    proc = lint_imports(PYPROJECT, ROOT / "src")
    assert proc.returncode == 0, report(proc)
    for cid, name in contract_names().items():
        assert contract_status(proc, name) == "KEPT", f"contract {cid!r}:\n{report(proc)}"
    m = re.search(r"Analyzed (\d+) files", proc.stdout)
    assert m and int(m.group(1)) >= 20, report(proc)  # the real package, not an empty graph


def test_config_has_both_contracts():
    cfg = config()
    assert cfg["root_package"] == "layerscope"
    contracts = {c["id"]: c for c in cfg["contracts"]}
    assert contracts["layers"]["type"] == "layers"
    assert contracts["layers"]["containers"] == ["layerscope"]
    assert contracts["layers"]["layers"] == ["server", "learn", "engine", "models"]
    assert contracts["top"]["type"] == "forbidden"
    assert set(contracts["top"]["forbidden_modules"]) == {"layerscope", "layerscope.cli"}


# ---------------------------------------------------------------------------------------------
# The same contracts on a tiny package tree shaped like layerscope.
# ---------------------------------------------------------------------------------------------
CLEAN = {
    "__init__.py": (
        f"from {TOY}.engine.trace import run_trace\nfrom {TOY}.models.base import Model\n"
    ),
    "cli.py": f"from {TOY}.server.app import serve\nfrom {TOY}.report import show\n",
    "errors.py": "class Error(Exception):\n    pass\n",
    "report.py": f"from {TOY}.engine.trace import run_trace\n\nshow = run_trace\n",
    "models/__init__.py": "",
    "models/base.py": f"from {TOY}.errors import Error\n\n\nclass Model:\n    pass\n",
    "models/hf.py": f"from {TOY}.models.base import Model\n",
    "engine/__init__.py": "",
    "engine/trace.py": f"from {TOY}.models.base import Model\n\n\ndef run_trace():\n    pass\n",
    "learn/__init__.py": "",
    "learn/chat.py": f"from {TOY}.engine.trace import run_trace\n",
    "server/__init__.py": "",
    "server/app.py": (
        f"from {TOY}.engine.trace import run_trace\nfrom {TOY}.models.hf import Model\n\n\n"
        "def serve():\n    pass\n"
    ),
}

# name -> (file, code appended to it, id of the contract it breaks, chain the report must show)
VIOLATIONS = {
    "models->engine inside a function (like LensModel.trace once did)": (
        "models/base.py",
        f"\n\ndef trace():\n    from {TOY}.engine.trace import run_trace\n\n    return run_trace\n",
        "layers",
        f"{TOY}.models.base -> {TOY}.engine.trace",
    ),
    "models->server": (
        "models/hf.py",
        f"from {TOY}.server import app\n",
        "layers",
        f"{TOY}.models.hf -> {TOY}.server.app",
    ),
    "engine->server under TYPE_CHECKING": (
        "engine/trace.py",
        f"\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        f"    from {TOY}.server.app import serve\n",
        "layers",
        f"{TOY}.engine.trace -> {TOY}.server.app",
    ),
    "models->engine indirectly, through a module outside the layers": (
        "errors.py",
        f"from {TOY}.engine import trace\n",
        "layers",
        f"{TOY}.errors -> {TOY}.engine",
    ),
    "server->cli": (
        "server/app.py",
        f"from {TOY} import cli\n",
        "top",
        f"{TOY}.server.app -> {TOY}.cli",
    ),
    "engine->top-level package": (
        "engine/trace.py",
        f"\n\ndef again():\n    from {TOY} import run_trace\n\n    return run_trace\n",
        "top",
        f"{TOY}.engine.trace -> {TOY} ",
    ),
}


def _rename(value):
    """The contracts' module names with ``layerscope`` replaced by the toy package's name."""
    if isinstance(value, str):
        return re.sub(r"\blayerscope\b", TOY, value)
    if isinstance(value, list):
        return [_rename(v) for v in value]
    return value


def _toml_table(header: str, table: dict) -> str:
    # json renders strings, lists of strings and booleans in a form TOML accepts
    return "\n".join([header, *(f"{k} = {json.dumps(_rename(v))}" for k, v in table.items())])


def write_toy(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    """The toy tree under ``tmp_path/src`` and ``tmp_path/pyproject.toml`` with our contracts."""
    src = tmp_path / "src"
    for rel, code in CLEAN.items():
        path = src / TOY / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code + (extra or {}).get(rel, ""))
    cfg = config()
    top = {k: v for k, v in cfg.items() if k != "contracts"}
    parts = [_toml_table("[tool.importlinter]", top)]
    parts += [_toml_table("[[tool.importlinter.contracts]]", c) for c in cfg["contracts"]]
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("\n\n".join(parts) + "\n")
    return pyproject


def test_toy_tree_without_violations_keeps_the_contracts(tmp_path):
    proc = lint_imports(write_toy(tmp_path), tmp_path / "src")
    assert proc.returncode == 0, report(proc)
    for name in contract_names().values():
        assert contract_status(proc, _rename(name)) == "KEPT", report(proc)


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_each_violation_breaks_its_contract(tmp_path, case):
    rel, code, broken, chain = VIOLATIONS[case]
    proc = lint_imports(write_toy(tmp_path, {rel: code}), tmp_path / "src")
    assert proc.returncode != 0, report(proc)
    for cid, name in contract_names().items():
        expected = "BROKEN" if cid == broken else "KEPT"
        assert contract_status(proc, _rename(name)) == expected, f"{cid}:\n{report(proc)}"
    assert chain in proc.stdout, report(proc)
