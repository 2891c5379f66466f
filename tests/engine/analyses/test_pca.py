"""PCA trajectories of the residual stream on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.engine.analyses.pca import pca_trajectories
from layerscope.errors import InputError


def test_pca_trajectories_shape_and_determinism(model, cap):
    a = pca_trajectories(model, cap.resid, [1, 3])
    b = pca_trajectories(model, cap.resid, [1, 3])
    assert a.coords.shape == (model.info.n_blocks + 1, 2, 2)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert 0 < a.explained[0] <= 1 and a.explained[1] <= a.explained[0]
    single = pca_trajectories(model, cap.resid, [2], normed=False)
    assert single.coords.shape == (model.info.n_blocks + 1, 1, 2)
    with pytest.raises(InputError):
        pca_trajectories(model, cap.resid, [100])
