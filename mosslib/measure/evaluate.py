"""PSNR/SSIM of a model - or of the rainy inputs themselves (the paper's "Input" row) - on a
test set, per evaluation group (DDN-SIRR: dense = inputs 1-10, sparse = 11-20, plus all); and
the PSNR change of a fast inference path against fp32.

Images go through the model whole, with the same padding as inference (MOEDN pads to a multiple
of 8 inside and crops back). The command is ``python -m mosslib evaluate``
(:mod:`mosslib.apps.evaluate`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

from .metrics import psnr, ssim
from ..data import images
from ..model import fast as fast_module

__all__ = ["derain_tensor", "evaluate_pairs", "summarise", "psnr_change_vs_fp32"]


@torch.no_grad()
def derain_tensor(model, rainy: np.ndarray, device: str = "cpu") -> np.ndarray:
    """uint8 (H, W, 3) -> derained uint8 (H, W, 3) with a [-1, 1] model, whole image."""
    y = model(images.to_batch(rainy).to(device)).float()
    return images.to_uint8_image(y)


def evaluate_pairs(groups: dict, model=None, convention: str = "rgb", device: str = "cpu", progress: bool = False) -> dict:
    """Per-image metrics: ``{group: [{"name", "psnr", "ssim"}]}``; ``model=None`` scores the inputs."""
    from tqdm.auto import tqdm  # looked up at each call: the book runner redirects tqdm.auto's bars (apps.bookruns)

    out = {}
    total = sum(len(v) for v in groups.values())
    bar = tqdm(total=total, disable=not progress, desc="evaluate")
    for name, pairs in groups.items():
        rows = []
        for pair in pairs:
            rainy, clean = pair.load()
            pred = rainy if model is None else derain_tensor(model, rainy, device)
            rows.append({"name": pair.name, "psnr": psnr(pred, clean, convention), "ssim": ssim(pred, clean, convention)})
            bar.update(1)
        out[name] = rows
    bar.close()
    return out


def summarise(per_image: dict) -> dict:
    """Mean PSNR/SSIM per group, plus "all" over every image when there are several groups."""
    groups = dict(per_image)
    if len(groups) > 1 and "all" not in groups:
        groups["all"] = [r for rows in per_image.values() for r in rows]
    res = {}
    for name, rows in groups.items():
        ps = [r["psnr"] for r in rows]
        res[name] = {
            "n": len(rows),
            "psnr": float(np.mean([min(p, 100.0) for p in ps])) if ps else math.nan,
            "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else math.nan,
        }
    return res


# -- accuracy check ---------------------------------------------------------------------------
def _as_pair(p) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(p, "load"):
        return p.load()
    rainy, clean = p
    return np.asarray(rainy), np.asarray(clean)


def psnr_change_vs_fp32(model, pairs: Iterable, precision: str = "bf16", device="cpu",
                        fast: Callable | None = None) -> dict:
    """PSNR (RGB convention) of the fp32 model and of its fast path on (rainy, clean) pairs.

    ``pairs``: ``mosslib.data.layouts.Pair`` objects or (rainy, clean) uint8 (H, W, 3) arrays. Returns
    ``{"n", "psnr_fp32", "psnr_fast", "delta_db", "max_abs_delta_db", "max_pixel_diff"}`` where
    ``delta_db`` = mean PSNR(fast) - mean PSNR(fp32) and ``max_pixel_diff`` is in uint8 levels.
    """
    model = model.eval().to(device)
    fast = fast or fast_module.prepare(model, precision, device)
    ref_scores, fast_scores, max_diff = [], [], 0
    for p in pairs:
        rainy, clean = _as_pair(p)
        x = images.to_batch(rainy).to(device)
        with torch.no_grad():
            y_ref = model(x).float().cpu()
        y_fast = fast(x).cpu()
        a = ((y_ref[0] + 1) / 2).clamp(0, 1)
        b = ((y_fast[0] + 1) / 2).clamp(0, 1)
        ref_scores.append(psnr(a, clean))
        fast_scores.append(psnr(b, clean))
        max_diff = max(max_diff, int((torch.round(a * 255) - torch.round(b * 255)).abs().max()))
    if not ref_scores:
        raise ValueError("psnr_change_vs_fp32: no pairs given")
    finite = [(r, f) for r, f in zip(ref_scores, fast_scores) if math.isfinite(r) and math.isfinite(f)]
    return {
        "n": len(ref_scores),
        "psnr_fp32": float(np.mean([r for r, _ in finite])),
        "psnr_fast": float(np.mean([f for _, f in finite])),
        "delta_db": float(np.mean([f for _, f in finite]) - np.mean([r for r, _ in finite])),
        "max_abs_delta_db": float(max(abs(f - r) for r, f in finite)),
        "max_pixel_diff": max_diff,
        "path": fast.describe() if hasattr(fast, "describe") else str(fast),
    }
