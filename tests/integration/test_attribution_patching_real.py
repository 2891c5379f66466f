"""Attribution and component patching on the real default model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import numpy as np
import pytest

import layerscope

pytestmark = pytest.mark.integration

CLEAN = "When Mary and John went to the store, John gave a drink to"
CORRUPTED = "When Mary and John went to the store, Mary gave a drink to"


@pytest.fixture(scope="module")
def model():
    return layerscope.load("smollm2-135m", device="cpu")


def test_paris_attribution_converges_with_the_pad_baseline(model, record_property):
    a = model.attribute("The capital of France is", target=" Paris", steps=64)
    _, token, score = a.top(1)[0]
    record_property("paris_top_token", token)
    record_property("paris_delta", a.delta)
    record_property("paris_rel_delta", a.rel_delta)
    print(f"\nIG ' Paris': top {token!r} ({score:.3f}), delta {a.delta:.5f} ({a.rel_delta:.2e})")
    print(a.format())
    # Measured: ' of' 10.11, ' capital' 8.09, ' France' 3.65, ' is' 2.30 ('The' is kept in the
    # baseline: 0); f(x) - f(x0) = 24.15, delta 0.0038 (0.016 %).
    assert a.target == " Paris" and a.p_target > 0.5
    assert token in (" of", " capital") and a.scores[0] == 0.0
    assert abs(a.delta) < 0.05 and a.rel_delta < 0.01
    assert (a.scores[1:] > 0).all()


def test_token_zero_baseline_does_not_converge(model):
    a = model.attribute("The capital of France is", target=" Paris", steps=64, baseline=0)
    assert a.rel_delta > 0.1  # measured: delta 51 against f(x) - f(x0) = 15.9


def test_ioi_component_patching(model, record_property):
    s = model.component_patch_sweep(CLEAN, CORRUPTED)
    tok = model.tokenizer
    r = s.restored
    heads = r["head_out"]
    order = np.argsort(-heads, axis=None)[:5]
    top = [(int(i) // heads.shape[1], int(i) % heads.shape[1], float(heads.flat[i])) for i in order]
    record_property("ioi_answer", tok.token_text(s.answer_id))
    record_property("ioi_top_heads", top)
    print(
        f"\nIOI: answer {tok.token_text(s.answer_id)!r}, p_clean {s.p_clean:.3f}, "
        f"p_corrupted {s.p_corrupted:.3f}; top heads {top}"
    )
    assert tok.token_text(s.answer_id) == " Mary" and s.p_clean > s.p_corrupted
    changed = [
        t for t, (a, b) in enumerate(zip(s.clean_ids, s.corrupted_ids, strict=True)) if a != b
    ]
    assert len(changed) == 1
    assert r["resid"][0, changed[0]] == pytest.approx(1.0, abs=1e-3)  # the clean input itself
    assert r["resid"][-1, -1] == pytest.approx(1.0, abs=1e-3)
    # Measured: p(' Mary') 0.923 clean, 0.0031 corrupted. Head 23.3 alone restores 0.535 (next:
    # 29.1 0.044, 20.0 0.018); block 23's attention output at the last position 0.89; the
    # residual hands over from the changed ' John' (restored 1 up to h_20) to the last position
    # (0.91 from h_24): the name moves between h_20 and h_24.
    assert top[0][:2] == (23, 3) and top[0][2] > 0.3
    assert r["attn_out"][23, -1] > 0.5
    assert r["resid"][:20, changed[0]].min() > 0.9 and r["resid"][25:, -1].min() > 0.8
