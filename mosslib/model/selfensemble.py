"""Flip self-ensemble (test-time augmentation): the model's output averaged over mirrored copies of
the input, each mirrored back before averaging (the "+" models of EDSR, Lim et al. 2017).

``n`` = 1 (the model alone), 2 (+ the left-right mirror) or 4 (+ the upside-down mirror and
both). It costs ``n`` forward passes; no weight changes and no test image is looked at, so a
score with it is a score of the same model at ``n`` times the time. EDSR's x8 also transposes
the image; for rain that turns near-vertical streaks horizontal, which training never shows the
network: with the shipped model x8 scored below the x4 flips on DDN-SIRR (the numbers are in
docs/derain.md), so transposes are not offered.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ENSEMBLE_SIZES", "mirror", "self_ensemble"]

ENSEMBLE_SIZES = (1, 2, 4)
Forward = Callable[[torch.Tensor], torch.Tensor]


def mirror(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mirror ``k`` in 0..3 of (B, C, H, W): bit 0 flips left-right, bit 1 upside-down; its own inverse."""
    dims = [d for bit, d in ((1, -1), (2, -2)) if k & bit]
    return x.flip(dims) if dims else x


def self_ensemble(forward: Forward, n: int = 4) -> Forward:
    """``forward`` averaged over the first ``n`` mirrors: (B, C, H, W) -> (B, C, H, W), summed in fp32."""
    if n not in ENSEMBLE_SIZES:
        raise ValueError(f"self-ensemble size must be one of {ENSEMBLE_SIZES}, got {n!r}")
    if n == 1:
        return forward

    def ensembled(x: torch.Tensor) -> torch.Tensor:
        total = None
        for k in range(n):
            y = mirror(forward(mirror(x, k).contiguous()), k).float()
            total = y if total is None else total.add_(y)
        return total.div_(n)

    return ensembled
