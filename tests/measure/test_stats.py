"""mosslib.measure.stats and the wording of gains: real only when the interval excludes zero and has width;
several seeds resample seeds, then images."""
import math

import numpy as np
import pytest

from mosslib.measure import gains, stats


def ev(values, seed, group="dense"):
    return {"seed": seed, "convention": "rgb",
            "per_image": {group: [{"name": f"im{i}", "psnr": float(v), "ssim": 0.5} for i, v in enumerate(values)]}}


def test_zero_interval_is_never_called_real():
    g = gains.Gain(0.0, 0.0, 0.0, 10)
    assert g.degenerate and not g.significant
    text = g.sentence("x")
    assert "real difference" not in text and "+0.00" in text
    # identical outputs from two "different" models: a zero-width interval at zero
    base = [ev([20.0] * 10, 0)]
    same = gains.gain_of(base, [ev([20.0] * 10, 0)], "dense", "psnr")
    assert (same.mean, same.lo, same.hi) == (0.0, 0.0, 0.0) and not same.significant
    assert same.verdict() == "degenerate"


def test_verdict_vocabulary():
    assert stats.verdict_of(0.5, 0.2, 0.8, 10) == "real"
    assert stats.verdict_of(-0.5, -0.8, -0.2, 10) == "real"
    assert stats.verdict_of(0.1, -0.2, 0.4, 10) == "noise"
    assert stats.verdict_of(1.0, 1.0, 1.0, 10) == "degenerate"  # no width
    assert stats.verdict_of(1.0, 0.5, 1.5, 1) == "degenerate"  # one image
    assert stats.verdict_of(math.nan, math.nan, math.nan, 0) == "degenerate"
    assert stats.verdict_of(0.001, 0.0005, 0.002, 10) == "below precision"


def test_hierarchical_interval_is_wider_when_seeds_disagree():
    rng = np.random.default_rng(0)
    images = rng.normal(0.0, 0.2, 20)
    # three seeds whose gains differ a lot (training noise) but each is tight over images
    seeds_disagree = np.stack([images + off for off in (-1.0, 0.3, 1.6)])
    lo_h, hi_h = stats.hierarchical_ci(seeds_disagree, n_boot=2000)
    # what an images-only bootstrap of the seed-averaged differences would say
    lo_i, hi_i = stats.image_ci(seeds_disagree.mean(axis=0))
    assert (hi_h - lo_h) > 3 * (hi_i - lo_i)
    assert lo_h < seeds_disagree.mean() < hi_h
    assert lo_h < 0 < hi_h  # one seed pulls below zero: not a real gain over seeds
    assert lo_i > 0  # while the images-only interval would have called it real


def test_hierarchical_reduces_to_images_for_one_seed_and_is_reproducible():
    d = np.random.default_rng(1).normal(0.3, 0.5, 15)
    assert stats.hierarchical_ci(d[None, :]) == stats.image_ci(d)
    m = np.random.default_rng(2).normal(0.3, 0.5, (3, 15))
    assert stats.hierarchical_ci(m, n_boot=1000) == stats.hierarchical_ci(m, n_boot=1000)
    with pytest.raises(ValueError, match="level"):
        stats.hierarchical_ci(m, level=1.5)


def test_paired_matrix_pairs_seeds_and_images_by_name():
    base = {0: {"a": 1.0, "b": 2.0}, 1: {"a": 3.0, "b": 4.0}}
    new = {1: {"b": 5.0, "a": 3.5}, 0: {"a": 2.0, "b": 2.5, "c": 9.0}}
    m, pairs, names = stats.paired_matrix(base, new)
    assert pairs == [(0, 0), (1, 1)] and names == ["a", "b"]
    assert m.tolist() == [[1.0, 0.5], [0.5, 1.0]]
    # different seed numbers: paired in sorted order
    m2, pairs2, _ = stats.paired_matrix({0: {"a": 1.0}, 1: {"a": 2.0}}, {5: {"a": 1.5}, 6: {"a": 2.5}})
    assert pairs2 == [(0, 5), (1, 6)] and m2.ravel().tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="no test image in common"):
        stats.paired_matrix({0: {"a": 1.0}}, {0: {"b": 1.0}})


def test_gain_of_with_several_seeds_uses_seeds_and_says_so():
    rng = np.random.default_rng(3)
    base = [ev(20 + rng.normal(0, 0.5, 10), s) for s in (0, 1, 2)]
    # a steady +0.6 dB gain on every seed and image (small per-image jitter)
    new = [ev([r["psnr"] + 0.6 + rng.normal(0, 0.05) for r in b["per_image"]["dense"]], s)
           for s, b in zip((0, 1, 2), base)]
    g = gains.gain_of(base, new, "dense", "psnr")
    assert g.seeds == 3 and g.n == 10 and g.significant and g.real and g.lo > 0.4
    text = g.sentence("x")
    assert "3 seeds" in text and "real difference over these seeds" in text and "one seed" not in text


def test_seed_t_interval_widens_with_few_seeds_where_the_seed_bootstrap_does_not():
    d = np.array([[0.9, 1.1], [1.9, 2.1], [2.9, 3.1]])  # three seeds, per-seed means 1, 2, 3
    m, lo, hi = stats.seed_t_interval(d)
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2 df) x sd 1 / sqrt(3)
    assert m == pytest.approx(2.0) and (lo, hi) == pytest.approx((2.0 - half, 2.0 + half))
    _, blo, bhi = stats.interval_of(d, n_boot=2000)
    assert lo < blo and hi > bhi  # 3 seeds: the bootstrap over seeds runs narrower
    assert all(math.isnan(v) for v in stats.seed_t_interval(d[:1])[1:])  # one seed: no spread to read
    assert all(math.isnan(v) for v in stats.seed_t_interval([]))
