"""Intervals for the book's gains: a bootstrap over test images, and over seeds then images.

A gain is the mean of paired per-image differences ``new - base``. With one training seed the only
resampling unit is the test image, so the interval says how the gain would move on other test
images of the same kind, not how it would move if the model were trained again. With several seeds
(every seed scored on the same test images) :func:`hierarchical_ci` resamples seeds, then images,
so the interval covers training noise too; with as few as 3 seeds it sees few distinct seed draws and
runs narrow, so :func:`seed_t_interval` (Student's t over the seeds' means) is reported beside it and
a difference over seeds is called real only when both exclude zero.

:func:`verdict_of` is the one rule the book's wording follows: a difference is *real* only when
its interval excludes zero and the interval is not degenerate (no width, fewer than two images, or
not finite). Pure functions of numbers: no files, no torch.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "image_ci",
    "hierarchical_ci",
    "paired_matrix",
    "interval_of",
    "seed_t_interval",
    "is_degenerate",
    "excludes_zero",
    "verdict_of",
    "coverage_text",
]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")


def _quantiles(means: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def image_ci(diffs: Sequence[float], level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs``, resampling images with replacement."""
    d = np.asarray(diffs, dtype=np.float64).ravel()
    _check_level(level)
    if d.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    return _quantiles(means, level)


def hierarchical_ci(diffs, level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the mean of a (seeds x images) matrix of paired differences.

    Each replicate draws seeds with replacement, then images with replacement (the test images are
    the same for every seed, so one image draw is applied to the drawn seeds' rows), and takes the
    mean of that sub-matrix. With one row this is :func:`image_ci`'s interval.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2:
        raise ValueError(f"expected a (seeds x images) matrix, got shape {d.shape}")
    _check_level(level)
    n_s, n_i = d.shape
    if d.size == 0:
        return math.nan, math.nan
    if n_s == 1:
        return image_ci(d[0], level, n_boot, seed)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = 500
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        s_idx = rng.integers(0, n_s, size=(k, n_s))
        i_idx = rng.integers(0, n_i, size=(k, n_i))
        rows = d[s_idx]  # (k, n_s, n_i)
        picked = np.take_along_axis(rows, np.broadcast_to(i_idx[:, None, :], (k, n_s, n_i)), axis=2)
        means[start:start + k] = picked.mean(axis=(1, 2))
    return _quantiles(means, level)


def paired_matrix(base: Mapping[object, Mapping[str, float]], new: Mapping[object, Mapping[str, float]]):
    """(seeds x images) differences ``new - base`` from ``{seed: {image: value}}`` of each side.

    Seeds are paired by their key where both sides have the same keys, else by sorted order (each
    run is then compared with its partner in order); images by name, in the first seed's order.
    Returns ``(matrix, seed_pairs, image_names)``; ValueError when no image is in common.
    """
    b_keys, n_keys = sorted(base, key=str), sorted(new, key=str)
    if not b_keys or not n_keys:
        raise ValueError("no seeds to pair (an empty side)")
    if set(b_keys) == set(n_keys):
        pairs = [(k, k) for k in b_keys]
    else:
        pairs = list(zip(b_keys, n_keys))
    names = [k for k in base[pairs[0][0]] if all(k in base[a] and k in new[b] for a, b in pairs)]
    if not names:
        first_b, first_n = list(base[pairs[0][0]]), list(new[pairs[0][1]])
        raise ValueError(f"no test image in common to pair (a has {first_b[:3]}..., b has {first_n[:3]}...)")
    m = np.array([[new[b][k] - base[a][k] for k in names] for a, b in pairs], dtype=np.float64)
    return m, pairs, names


def interval_of(matrix, level: float = 0.95, n_boot: int | None = None, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi) of a (seeds x images) difference matrix: images only for one seed, else hierarchical."""
    d = np.asarray(matrix, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.size == 0:
        return math.nan, math.nan, math.nan
    if d.shape[0] == 1:
        lo, hi = image_ci(d[0], level, n_boot or 10000, seed)
    else:
        lo, hi = hierarchical_ci(d, level, n_boot or 10000, seed)
    return float(d.mean()), lo, hi


def seed_t_interval(matrix, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): Student's t interval over the seeds' means of a (seeds x images) difference
    matrix. With few seeds a bootstrap over seeds sees only a few distinct resamples and runs
    narrow; this one widens with t's tails instead (nan for fewer than 2 seeds)."""
    from scipy import stats as sps  # lazy: scipy is slow to import and only this needs it

    d = np.asarray(matrix, dtype=np.float64)
    means = d.mean(axis=-1).ravel() if d.size else d.ravel()
    if means.size < 2:
        return float(means.mean()) if means.size else math.nan, math.nan, math.nan
    m, se = float(means.mean()), float(means.std(ddof=1) / math.sqrt(means.size))
    half = float(sps.t.ppf(0.5 + level / 2, means.size - 1)) * se
    return m, m - half, m + half


def is_degenerate(lo: float, hi: float, n_images: int, rel: float = 1e-9) -> bool:
    """An interval that cannot tell anything: not finite, fewer than 2 images, or no width."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or n_images < 2:
        return True
    return (hi - lo) <= rel * max(1.0, abs(lo), abs(hi))


def excludes_zero(lo: float, hi: float) -> bool:
    return bool(lo > 0 or hi < 0)


def verdict_of(mean: float, lo: float, hi: float, n_images: int, digits: int = 2) -> str:
    """``"real"``, ``"noise"`` (interval includes zero), ``"degenerate"`` or ``"below precision"``."""
    if math.isnan(mean) or is_degenerate(lo, hi, n_images):
        return "degenerate"
    if max(abs(lo), abs(hi)) < 0.5 * 10**-digits:
        return "below precision"
    return "real" if excludes_zero(lo, hi) else "noise"


def coverage_text(n_seeds: int, n_images: int) -> str:
    """What an interval covers, in words: seeds and images, or (one seed) test images only."""
    if n_seeds > 1:
        return f"{n_images} images, {n_seeds} seeds: resampling seeds then images, it covers training noise too"
    return f"{n_images} images, one seed: it covers test images only, not training noise"
