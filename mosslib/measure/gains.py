"""Gains of the book's tables: per-image scores averaged over seeds, paired gains with their
bootstrap intervals (:mod:`mosslib.measure.stats`), and the rainy inputs' own scores (the paper's
Input rows)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import stats
from .evaluate import evaluate_pairs, summarise
from ..data.layouts import open_dataset

PSNR_CAP = 100.0  # identical images give inf; capped as in mosslib.evaluate.summarise
METRICS = ("psnr", "ssim")


# -- statistics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gain:
    """Mean paired difference (b - a) over ``n`` test images (and ``seeds`` seeds) with its bootstrap interval."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = 0.95
    seeds: int = 1
    t_lo: float = math.nan  # Student's t interval over the seeds' means (several seeds only):
    t_hi: float = math.nan  # with 3 seeds the bootstrap sees few distinct seed draws and runs narrow

    @property
    def seed_noise_not_ruled_out(self) -> bool:
        """True when the bootstrap interval excludes zero but the t interval over the seeds' means does not."""
        return self.significant and self.seeds > 1 and not math.isnan(self.t_lo) and not stats.excludes_zero(self.t_lo, self.t_hi)

    def columns(self, prefix: str) -> dict[str, float]:
        """A results file's columns: ``prefix`` (mean), ``_ci_lo/_ci_hi`` and, for several seeds, ``_t_lo/_t_hi``."""
        out = {prefix: self.mean, f"{prefix}_ci_lo": self.lo, f"{prefix}_ci_hi": self.hi}
        if self.seeds > 1:
            out.update({f"{prefix}_t_lo": self.t_lo, f"{prefix}_t_hi": self.t_hi})
        return out

    @property
    def degenerate(self) -> bool:
        """True when the interval cannot tell anything (no width, fewer than 2 images, not finite)."""
        return stats.is_degenerate(self.lo, self.hi, self.n)

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero and is not degenerate (a gain told apart from noise)."""
        return stats.excludes_zero(self.lo, self.hi) and not self.degenerate and not math.isnan(self.mean)

    @property
    def real(self) -> bool:
        """True when the difference may be called real: significant over several seeds and the test images,
        by the bootstrap and by the t interval over the seeds' means."""
        return self.significant and self.seeds > 1 and not self.seed_noise_not_ruled_out

    def verdict(self, digits: int = 2) -> str:
        """:func:`mosslib.stats.verdict_of`: "real", "noise", "degenerate" or "below precision"."""
        return stats.verdict_of(self.mean, self.lo, self.hi, self.n, digits)

    def text(self, digits: int = 2) -> str:
        """``+1.23 [+0.80, +1.60]``."""
        if math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"

    def coverage(self) -> str:
        """What the interval covers, in words (:func:`mosslib.stats.coverage_text`)."""
        return stats.coverage_text(self.seeds, self.n)

    def sentence(self, what: str, unit: str = "dB", digits: int = 2) -> str:
        """A line for the narrative: the gain, its interval, what it covers and whether it is told from noise."""
        if math.isnan(self.mean):
            return f"{what}: no paired test images"
        verdict = self.verdict(digits)
        if verdict == "below precision":
            return f"{what}: {self.mean:+.{digits}f} {unit} ({self.n} images) - no difference at this precision"
        if verdict == "degenerate":
            return (f"{what}: {self.mean:+.{digits}f} {unit} (interval {self.lo:+.{digits}f} to {self.hi:+.{digits}f}, "
                    f"{self.n} images) - the interval has no width, so it cannot tell a difference from noise")
        if verdict == "real" and self.seed_noise_not_ruled_out:
            told = (f"the interval excludes zero, but a t interval over the {self.seeds} seeds' means, "
                    f"{self.t_lo:+.{digits}f} to {self.t_hi:+.{digits}f}, includes it: seed noise is not ruled out")
        elif verdict == "real" and self.seeds > 1:
            told = "the interval excludes zero: a real difference over these seeds and test images"
        elif verdict == "real":
            told = ("the interval excludes zero on these test images, but one seed leaves training noise out, "
                    "so this is not called a real difference (it needs several seeds)")
        else:
            told = "the interval includes zero: not distinguishable from noise"
        return (f"{what}: {self.mean:+.{digits}f} {unit} (95 % CI {self.lo:+.{digits}f} to {self.hi:+.{digits}f}; "
                f"{self.coverage()}) - {told}")


def bootstrap_ci(diffs: Sequence[float], level: float = 0.95, n_boot: int = 10000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (resampling images with replacement)."""
    return stats.image_ci(diffs, level, n_boot, seed)


def paired_gain(a: Mapping[str, float], b: Mapping[str, float], level: float = 0.95, n_boot: int = 10000,
                seed: int = 0) -> Gain:
    """Gain of ``b`` over ``a`` (per-image values keyed by image name, one seed), paired by name."""
    names = [k for k in a if k in b]
    if not names:
        raise ValueError(f"no test image in common to pair (a has {list(a)[:3]}..., b has {list(b)[:3]}...)")
    d = np.array([b[k] - a[k] for k in names], dtype=np.float64)
    lo, hi = bootstrap_ci(d, level, n_boot, seed)
    return Gain(float(d.mean()), lo, hi, len(names), level)


def image_rows(ev: Mapping, group: str) -> list[dict]:
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
        for r in image_rows(ev, group):
            v = float(r[metric])
            acc.setdefault(r["name"], []).append(min(v, PSNR_CAP) if metric == "psnr" else v)
    return {k: float(np.mean(v)) for k, v in acc.items()}


def split_stats(evals: Sequence[Mapping], group: str, metric: str) -> tuple[float, float]:
    """(mean over seeds of the group mean, standard deviation over seeds; nan for one seed)."""
    vals = [float(np.mean(list(per_image([ev], group, metric).values()))) for ev in evals]
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)


def per_seed(evals: Sequence[Mapping], group: str, metric: str) -> dict:
    """``{seed: {image name: value}}`` of one group (a seed that repeats, or none, is keyed by position)."""
    keys = [ev.get("seed") for ev in evals]
    if None in keys or len(set(keys)) != len(keys):
        keys = list(range(len(evals)))
    return {k: per_image([ev], group, metric) for k, ev in zip(keys, evals)}


def gain_of(base: Sequence[Mapping], new: Sequence[Mapping], group: str, metric: str, level: float = 0.95,
            n_boot: int | None = None, seed: int = 0) -> Gain:
    """Paired bootstrap gain of ``new`` over ``base`` on one test group.

    One seed a side: a bootstrap over test images. Several: seeds are paired (by seed number, else in
    order) and the interval resamples seeds, then images (:func:`mosslib.stats.hierarchical_ci`);
    ``t_lo/t_hi`` then hold Student's t interval over the seeds' means (:func:`mosslib.stats.seed_t_interval`).
    """
    if not base or not new:
        raise ValueError("no scores given (an empty list of evaluations)")
    matrix, pairs, names = stats.paired_matrix(per_seed(base, group, metric), per_seed(new, group, metric))
    mean, lo, hi = stats.interval_of(matrix, level, n_boot, seed)
    _, t_lo, t_hi = stats.seed_t_interval(matrix, level) if len(pairs) > 1 else (mean, math.nan, math.nan)
    return Gain(mean, lo, hi, len(names), level, seeds=len(pairs), t_lo=t_lo, t_hi=t_hi)


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
