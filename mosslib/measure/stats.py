"""Statistics of the book's tables: per-image scores over seeds, paired bootstrap gains with
confidence intervals, and the rainy inputs' own scores (the paper's Input rows)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .evaluate import evaluate_pairs, summarise
from ..data.layouts import open_dataset

__all__ = ["PSNR_CAP", "METRICS", "Gain", "bootstrap_ci", "paired_gain", "per_image", "split_stats", "gain_of",
           "input_scores", "groups_of"]

PSNR_CAP = 100.0  # identical images give inf; capped as in mosslib.measure.evaluate.summarise
METRICS = ("psnr", "ssim")


# -- statistics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gain:
    """Mean paired difference (b - a) over ``n`` test images with its bootstrap interval."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero (a gain distinguishable from noise)."""
        return bool(self.lo > 0 or self.hi < 0)

    def text(self, digits: int = 2) -> str:
        """``+1.23 [+0.80, +1.60]``."""
        if math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"

    def sentence(self, what: str, unit: str = "dB", digits: int = 2) -> str:
        """A line for the narrative: the gain, its interval, n and whether it is told from noise."""
        if math.isnan(self.mean):
            return f"{what}: no paired test images"
        if max(abs(self.lo), abs(self.hi)) < 0.5 * 10**-digits:
            return f"{what}: {self.mean:+.{digits}f} {unit} ({self.n} images) - no difference at this precision"
        verdict = ("the interval excludes zero: a real difference on this test set" if self.significant
                   else "the interval includes zero: not distinguishable from noise on these images")
        return (f"{what}: {self.mean:+.{digits}f} {unit} (95 % bootstrap CI {self.lo:+.{digits}f} to "
                f"{self.hi:+.{digits}f}, {self.n} images) - {verdict}")


def bootstrap_ci(diffs: Sequence[float], level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (resampling images with replacement)."""
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_gain(a: Mapping[str, float], b: Mapping[str, float], level: float = 0.95, n_boot: int = 10000,
                seed: int = 0) -> Gain:
    """Gain of ``b`` over ``a`` (per-image values keyed by image name), paired by name."""
    names = [k for k in a if k in b]
    if not names:
        raise ValueError(f"no test image in common to pair (a has {list(a)[:3]}..., b has {list(b)[:3]}...)")
    d = np.array([b[k] - a[k] for k in names], dtype=np.float64)
    lo, hi = bootstrap_ci(d, level, n_boot, seed)
    return Gain(float(d.mean()), lo, hi, len(names), level)


def _rows(ev: Mapping, group: str) -> list[dict]:
    per = ev["per_image"]
    if group in per:
        return list(per[group])
    if group == "all":
        return [r for rows in per.values() for r in rows]
    raise KeyError(f"no test group {group!r} in these scores; they have {sorted(per)}")


def per_image(evals: Sequence[Mapping], group: str, metric: str) -> dict[str, float]:
    """``{image name: value}`` of one group, averaged over the seeds' scores (PSNR capped at 100)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
    if not evals:
        raise ValueError("no scores given (an empty list of evaluations)")
    acc: dict[str, list[float]] = {}
    for ev in evals:
        for r in _rows(ev, group):
            v = float(r[metric])
            acc.setdefault(r["name"], []).append(min(v, PSNR_CAP) if metric == "psnr" else v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def split_stats(evals: Sequence[Mapping], group: str, metric: str) -> tuple[float, float]:
    """(mean over seeds of the group mean, standard deviation over seeds; nan for one seed)."""
    vals = [float(np.mean(list(per_image([ev], group, metric).values()))) for ev in evals]
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)


def gain_of(base: Sequence[Mapping], new: Sequence[Mapping], group: str, metric: str, **kw) -> Gain:
    """Paired bootstrap gain of ``new`` over ``base`` on one test group."""
    return paired_gain(per_image(base, group, metric), per_image(new, group, metric), **kw)


def input_scores(test_root, convention: str = "rgb") -> dict:
    """Scores of the rainy test images themselves (the paper's "Input" column), shaped like evaluated()."""

    ds = open_dataset(test_root)
    per = evaluate_pairs(ds.test_groups(), None, convention)
    return {"test": str(ds.root), "convention": convention, "splits": summarise(per), "per_image": per, "seed": None}


def groups_of(evals: Sequence[Mapping]) -> list[str]:
    """The test groups of a set of scores, DDN-SIRR's dense and sparse first."""
    names = list(evals[0]["per_image"]) if evals else []
    order = [g for g in ("dense", "sparse") if g in names]
    return order + [g for g in names if g not in order]
