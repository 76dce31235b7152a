"""mosslib.data.rain: determinism, parameters that do what they say, and styles that differ measurably."""
from __future__ import annotations

import numpy as np
import pytest

from mosslib.data.rain import STYLES, RainStyle, get_style, render_many, render_rain, streak_kernel

GREY = np.full((96, 96, 3), 60, np.uint8)


def _photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.chelsea()[::2, ::2])  # (150, 226, 3)


def test_deterministic_given_seed():
    img = _photo()
    for style in ("synthetic", "real-like", "heavy"):
        a, clean, ra = render_rain(img, style, seed=4)
        b, _, rb = render_rain(img, style, seed=4)
        assert np.array_equal(a, b) and np.array_equal(ra, rb)
        assert not np.array_equal(a, render_rain(img, style, seed=5)[0])
        assert np.array_equal(clean, img) and clean is not img
        assert a.dtype == np.uint8 and a.shape == img.shape
        assert ra.dtype == np.float32 and ra.shape == img.shape[:2] and 0 <= ra.min() and ra.max() <= 1


def test_required_styles_exist_and_validate():
    assert {"synthetic", "real-like", "heavy"} <= set(STYLES)
    with pytest.raises(ValueError, match="unknown rain style"):
        render_rain(GREY, "drizzle")
    with pytest.raises(ValueError, match="unknown rain parameters"):
        render_rain(GREY, "synthetic", speed=3)
    with pytest.raises(ValueError, match="uint8"):
        render_rain(GREY.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="lo <= hi"):
        RainStyle(length=(20.0, 10.0))
    with pytest.raises(ValueError, match="blend"):
        RainStyle(blend="multiply")
    assert get_style("heavy", density=0.01).density == (0.01, 0.01)


def test_no_drops_no_haze_leaves_the_image_alone():
    rainy, clean, rain = render_rain(GREY, "synthetic", seed=0, density=0.0)
    assert np.array_equal(rainy, clean) and not rain.any()
    hazy, _, rain = render_rain(GREY, "real-like", seed=0, density=0.0)  # haze only
    assert not rain.any() and hazy.mean() > GREY.mean() + 5


def test_density_and_intensity_raise_the_rain():
    light = render_rain(GREY, "synthetic", 1, density=0.002)[2].mean()
    dense = render_rain(GREY, "synthetic", 1, density=0.01)[2].mean()
    assert dense > 3 * light
    dim = render_rain(GREY, "synthetic", 1, intensity=0.2)[0].mean()
    bright = render_rain(GREY, "synthetic", 1, intensity=0.8)[0].mean()
    assert bright > dim + 2


def test_angle_sets_the_streak_direction():
    def gradient_ratio(rain):  # vertical streaks: horizontal gradients dominate
        gy, gx = np.gradient(rain.astype(np.float64))
        return (gx**2).sum() / (gy**2).sum()

    vertical = render_rain(GREY, "synthetic", 2, angle=0.0)[2]
    horizontal = render_rain(GREY, "synthetic", 2, angle=90.0)[2]
    assert gradient_ratio(vertical) > 3 and gradient_ratio(horizontal) < 1 / 3
    k = streak_kernel(21, 0.0, 0.5)
    assert k.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(k > 0.5)
    assert np.ptp(rows) >= 18 and np.ptp(cols) <= 2


def test_screen_is_never_brighter_than_additive():
    img = _photo()
    add = render_rain(img, "synthetic", 3, blend="additive")[0].astype(int)
    scr = render_rain(img, "synthetic", 3, blend="screen")[0].astype(int)
    assert (scr <= add).all() and (scr < add).any()


def test_styles_differ_measurably():
    def stats(style):
        haze, cover = [], []
        for seed in range(4):
            rainy, clean, rain = render_rain(GREY, style, seed)
            haze.append(np.median(rainy.astype(float) - clean))  # the background lift where no streak is
            cover.append(rain.mean())
        return np.mean(haze), np.mean(cover)

    syn_haze, syn_cover = stats("synthetic")
    real_haze, real_cover = stats("real-like")
    heavy_haze, heavy_cover = stats("heavy")
    assert syn_haze == 0 and real_haze > 5  # real-like has haze, synthetic none
    assert heavy_cover > 2 * syn_cover and heavy_cover > real_cover  # heavy: more rain
    # thickness: synthetic streaks are thin and sharp, real-like ones thick and defocused
    def sharpness(style):
        layers = [render_rain(GREY, style, s)[2] for s in range(4)]
        return np.mean([np.abs(np.diff(r, axis=1)).mean() / r.mean() for r in layers])

    assert sharpness("synthetic") > 1.5 * sharpness("real-like")


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 300, 3), (77, 13, 3)])
def test_any_image_size(shape):
    img = np.full(shape, 128, np.uint8)
    for style in STYLES:
        rainy, _, rain = render_rain(img, style, 0)
        assert rainy.shape == shape and rain.shape == shape[:2]


def test_render_many_is_ordered_and_independent_of_threads():
    rng = np.random.default_rng(0)
    cleans = [rng.integers(0, 256, (24 + i, 32, 3), dtype=np.uint8) for i in range(5)]
    jobs = [(c, style, 10 + k) for k, (c, style) in enumerate((c, s) for s in ("dense", "heavy") for c in cleans)]
    serial = render_many(jobs, workers=1)
    assert len(serial) == len(jobs) and all(r.shape == j[0].shape for r, j in zip(serial, jobs))
    assert all(np.array_equal(r, render_rain(c, s, seed=k)[0]) for r, (c, s, k) in zip(serial, jobs))
    for workers in (3, None):
        assert all(np.array_equal(a, b) for a, b in zip(render_many(jobs, workers=workers), serial))
    assert render_many([]) == []
