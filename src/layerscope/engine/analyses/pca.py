"""PCA trajectories: the residual stream of some positions through every layer, in 2-D."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from layerscope.errors import InputError
from layerscope.models.base import LensModel


@dataclass(frozen=True)
class Trajectory:
    """Residual vectors of some positions through all layers, in their first two PCs' plane."""

    positions: list[int]
    coords: np.ndarray  # float32 [L+1, P, 2]
    explained: np.ndarray  # float32 [2]: variance ratio of each component


@torch.no_grad()
def pca_trajectories(
    model: LensModel, resid: torch.Tensor, positions: list[int], normed: bool = True
) -> Trajectory:
    """Project the residual of ``positions`` at every layer onto their two principal components.

    With ``normed`` the vectors first go through the final norm (what the lens reads), so the growth
    of the residual's norm with depth does not swamp the picture. Signs are fixed (largest loading
    positive) so the result is deterministic.
    """
    n_pos = resid.shape[1]
    bad = [p for p in positions if not 0 <= p < n_pos]
    if bad or not positions:
        raise InputError(f"positions must be within 0..{n_pos - 1}; got {positions}")
    x = resid[:, positions, :]
    x = model.final_norm(x.to(model.device, model.dtype)) if normed else x
    x = x.float().cpu()
    flat = x.reshape(-1, x.shape[-1])
    centred = flat - flat.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    comps = vh[:2].float()
    if comps.shape[0] < 2:  # a single point: pad with a zero component
        comps = torch.cat([comps, torch.zeros(2 - comps.shape[0], comps.shape[1])])
    flip = torch.sign(comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)))
    comps = comps * torch.where(flip == 0, torch.ones_like(flip), flip)
    coords = (centred @ comps.T).reshape(x.shape[0], len(positions), 2)
    var = (s**2).float()
    explained = var[:2] / var.sum().clamp_min(1e-30)
    explained = torch.cat([explained, torch.zeros(2 - explained.shape[0])])
    return Trajectory(
        positions=list(positions),
        coords=coords.numpy().astype(np.float32),
        explained=explained.numpy().astype(np.float32),
    )
