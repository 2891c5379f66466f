"""``fetch_d32``: the one downloader, exercised without a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layerscope.errors import ModelLoadError
from layerscope.models.nanochat import fetch_d32


def test_fetch_downloads_the_four_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    calls: list[dict[str, Any]] = []

    def fake(repo_id: str, **kwargs: Any) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        return str(tmp_path / "snap")

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert fetch_d32(progress=False) == tmp_path / "snap"
    (call,) = calls
    assert call["repo_id"] == "karpathy/nanochat-d32"
    assert call["cache_dir"] == tmp_path / "hub"
    assert sorted(call["allow_patterns"]) == [
        "meta_000650.json", "model_000650.pt", "token_bytes.pt", "tokenizer.pkl",
    ]  # fmt: skip


def test_fetch_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub

    def offline(repo_id: str, **kwargs: Any) -> str:
        raise OSError("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelLoadError, match="could not download karpathy/nanochat-d32"):
        fetch_d32(progress=False)


def test_token_text_for_ids_beyond_the_tokenizer(tiny_model: Any) -> None:
    assert tiny_model.tokenizer.token_text(123456) == "<|id_123456|>"
