"""Procedural rain: a seeded renderer that turns a clean photo into a (rainy, clean, rain) triple.

Model (all values in [0, 1], B the clean image, per image drawn from the style's ranges):

1. Each of ``layers`` streak layers starts as sparse noise: a pixel seeds a drop with
   probability ``density``; a seed's value is the layer's ``intensity`` times
   ``1 + intensity_jitter * U(-1, 1)``.
2. The seed map is convolved (FFT) with one streak kernel: a line of ``length`` pixels at
   ``angle`` degrees from vertical (the motion blur of a falling drop), optionally tapered at
   both ends, thickened by a Gaussian of sigma ``width``; the kernel peaks at 1, so an isolated
   streak's brightness is its seed value. The layer is clipped to [0, 1].
3. Layers combine as light does through independent veils, ``R = 1 - prod(1 - R_i)``, then an
   optional defocus ``blur`` (Gaussian sigma, px) softens R.
4. Blending: ``"additive"`` ``O = B + R`` or ``"screen"`` ``O = 1 - (1 - B)(1 - R)``.
5. Optional haze (rain accumulation, the veiling of distant rain): ``O = (1 - t) O + t A``
   with atmospheric light ``A = haze_light`` and a smooth random transmission map
   ``t = haze * (0.6 .. 1.0)``.

``render_rain`` returns ``(rainy uint8, clean uint8, R float32 (H, W))``; R is the streak
layer only (haze is not in it). Angles, lengths and widths are in pixels of the image given.
"""
from __future__ import annotations

import dataclasses
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve

__all__ = ["RainStyle", "STYLES", "get_style", "render_rain", "streak_kernel"]

Range = tuple[float, float]


@dataclass(frozen=True)
class RainStyle:
    """Parameters of the streak model (module docstring); ``(lo, hi)`` ranges are drawn uniformly."""

    layers: tuple[int, int] = (1, 1)  # number of streak layers (inclusive range)
    density: Range = (0.002, 0.005)  # probability that a pixel seeds a drop, per layer
    length: Range = (10.0, 20.0)  # streak length, pixels, per layer
    width: Range = (0.4, 0.6)  # streak thickness, Gaussian sigma in pixels, per layer
    angle: Range = (-15.0, 15.0)  # mean streak angle from vertical, degrees, per image
    angle_spread: float = 0.0  # each layer deviates from the mean by U(-spread, spread) degrees
    intensity: Range = (0.4, 0.65)  # peak streak brightness, per layer
    intensity_jitter: float = 0.1  # per-streak relative brightness variation
    taper: bool = False  # streaks fade in and out along their length
    blur: Range = (0.0, 0.0)  # defocus of the rain layer, Gaussian sigma in pixels, per image
    haze: Range = (0.0, 0.0)  # veiling strength t (0 = none), per image
    haze_light: float = 0.85  # atmospheric light A of the haze
    blend: str = "additive"  # "additive" or "screen"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if len(value) != 2 or value[0] > value[1]:
                    raise ValueError(f"RainStyle.{f.name} must be a (lo, hi) range with lo <= hi, got {value}")
        if self.layers[0] < 1:
            raise ValueError(f"RainStyle.layers must be >= 1, got {self.layers}")
        checks = {
            "density": (0.0, 1.0, self.density),
            "length": (1.0, 1e4, self.length),
            "width": (0.0, 100.0, self.width),
            "intensity": (0.0, 1.0, self.intensity),
            "blur": (0.0, 100.0, self.blur),
            "haze": (0.0, 1.0, self.haze),
        }
        for name, (lo, hi, (a, b)) in checks.items():
            if a < lo or b > hi:
                raise ValueError(f"RainStyle.{name} must lie in [{lo}, {hi}], got {(a, b)}")
        if not 0.0 <= self.haze_light <= 1.0:
            raise ValueError(f"RainStyle.haze_light must lie in [0, 1], got {self.haze_light}")
        if self.blend not in ("additive", "screen"):
            raise ValueError(f"RainStyle.blend must be 'additive' or 'screen', got {self.blend!r}")


STYLES: dict[str, RainStyle] = {
    # DDN-like synthetic rain: one layer of thin, straight, parallel streaks of uniform brightness.
    "synthetic": RainStyle(),
    # Real-like rain: 2-3 layers at different angles, lengths and thicknesses, tapered and
    # defocused streaks, screen blending and haze. Its domain shift from "synthetic" is what the
    # semi-supervised experiments exercise offline.
    "real-like": RainStyle(
        layers=(2, 3),
        density=(0.001, 0.003),
        length=(8.0, 40.0),
        width=(0.4, 1.2),
        angle=(-30.0, 30.0),
        angle_spread=12.0,
        intensity=(0.2, 0.55),
        intensity_jitter=0.4,
        taper=True,
        blur=(0.5, 1.2),
        haze=(0.05, 0.25),
        blend="screen",
    ),
    # Heavy rain (Rain100H / DDN-SIRR dense): dense, long, bright streaks of mixed widths.
    "heavy": RainStyle(
        layers=(2, 3),
        density=(0.001, 0.002),
        length=(25.0, 50.0),
        width=(0.5, 1.2),
        angle=(-25.0, 25.0),
        angle_spread=5.0,
        intensity=(0.5, 0.85),
        intensity_jitter=0.25,
        taper=True,
        blur=(0.0, 0.5),
        haze=(0.0, 0.1),
        blend="additive",
    ),
    # Dense rain like DDN-SIRR's dense test images: many thin, near-vertical streaks in several
    # layers over a veil of rain accumulation (washed-out contrast). Used, with "heavy", to widen
    # the labeled data of the cpu profile.
    "dense": RainStyle(
        layers=(2, 3),
        density=(0.002, 0.006),
        length=(15.0, 40.0),
        width=(0.3, 0.7),
        angle=(-12.0, 12.0),
        angle_spread=6.0,
        intensity=(0.2, 0.45),
        intensity_jitter=0.3,
        taper=True,
        blur=(0.0, 0.5),
        haze=(0.1, 0.3),
        blend="screen",
    ),
}


def get_style(style: str | RainStyle, **overrides) -> RainStyle:
    """A style by name (or as given) with fields replaced; a scalar for a range field means (v, v)."""
    if isinstance(style, str):
        if style not in STYLES:
            raise ValueError(f"unknown rain style {style!r}; use one of {sorted(STYLES)} or a RainStyle")
        style = STYLES[style]
    elif not isinstance(style, RainStyle):
        raise TypeError(f"style must be a name or a RainStyle, got {type(style).__name__}")
    if not overrides:
        return style
    known = {f.name: getattr(style, f.name) for f in fields(style)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown rain parameters {unknown}; RainStyle has {sorted(known)}")
    fixed = {}
    for name, value in overrides.items():
        if isinstance(known[name], tuple) and not isinstance(value, (tuple, list)):
            value = (value, value)
        fixed[name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(style, **fixed)


def streak_kernel(length: float, angle: float, width: float, taper: bool = False) -> np.ndarray:
    """(k, k) float32 kernel of one streak: an anti-aliased line at ``angle`` degrees from
    vertical, ``length`` px long, blurred by a Gaussian of sigma ``width``; its maximum is 1."""
    theta = math.radians(angle)
    dy, dx = math.cos(theta), math.sin(theta)
    half = int(math.ceil(length / 2 + 3 * width + 2))
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float64)
    n = max(2, int(math.ceil(length * 4)))
    t = np.linspace(-length / 2, length / 2, n)
    weight = np.sin(np.pi * (t / length + 0.5)) ** 0.5 if taper else np.ones_like(t)
    ys, xs = half + t * dy, half + t * dx
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = ys - y0, xs - x0
    for oy, ox, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(kernel, (y0 + oy, x0 + ox), w * weight)
    if width > 0:
        kernel = ndimage.gaussian_filter(kernel, width, mode="constant")
    peak = kernel.max()
    return (kernel / peak).astype(np.float32) if peak > 0 else kernel.astype(np.float32)


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(r[0]) if r[0] == r[1] else float(rng.uniform(r[0], r[1]))


def _streak_layer(shape: tuple[int, int], style: RainStyle, mean_angle: float, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    length = _uniform(rng, style.length)
    width = _uniform(rng, style.width)
    angle = mean_angle + (rng.uniform(-style.angle_spread, style.angle_spread) if style.angle_spread else 0.0)
    density = _uniform(rng, style.density)
    intensity = _uniform(rng, style.intensity)
    kernel = streak_kernel(length, angle, width, style.taper)
    m = kernel.shape[0] // 2  # seeds up to m px outside the image still reach into it
    canvas = (h + 2 * m, w + 2 * m)
    seeds = rng.random(canvas, dtype=np.float32) < density
    values = np.zeros(canvas, np.float32)
    count = int(seeds.sum())
    jitter = 1.0 + style.intensity_jitter * rng.uniform(-1.0, 1.0, count).astype(np.float32)
    values[seeds] = np.clip(intensity * jitter, 0.0, 1.0)
    if count == 0:
        return np.zeros(shape, np.float32)
    layer = fftconvolve(values, kernel, mode="same")[m : m + h, m : m + w]
    return np.clip(layer, 0.0, 1.0).astype(np.float32)


def _haze_map(shape: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth transmission field in [0.6, 1] * strength: bicubic up-sampling of 4x4 noise."""
    coarse = rng.random((4, 4))
    h, w = shape
    field = ndimage.zoom(coarse, (h / 4, w / 4), order=3, mode="nearest", grid_mode=True)[:h, :w]
    field = np.clip(field, 0.0, 1.0)
    return (strength * (0.6 + 0.4 * field)).astype(np.float32)


def render_rain(
    clean: np.ndarray, style: str | RainStyle = "synthetic", seed: int = 0, **overrides
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render rain onto ``clean`` (H, W, 3) uint8.

    Returns ``(rainy (H, W, 3) uint8, clean (H, W, 3) uint8, rain layer R (H, W) float32 in [0, 1])``,
    a deterministic function of ``(clean, style, seed, overrides)`` (module docstring: the model).
    ``overrides`` replace style fields, e.g. ``render_rain(img, "real-like", 3, density=0.01)``.
    """
    clean = np.asarray(clean)
    if clean.dtype != np.uint8 or clean.ndim != 3 or clean.shape[-1] != 3:
        raise ValueError(f"render_rain takes a (H, W, 3) uint8 image, got {clean.dtype} {clean.shape}")
    if clean.shape[0] < 1 or clean.shape[1] < 1:
        raise ValueError(f"render_rain: empty image {clean.shape}")
    st = get_style(style, **overrides)
    rng = np.random.default_rng(seed)
    h, w = clean.shape[:2]
    mean_angle = _uniform(rng, st.angle)
    n_layers = int(rng.integers(st.layers[0], st.layers[1] + 1))
    rain = np.zeros((h, w), np.float32)
    for _ in range(n_layers):
        rain = 1.0 - (1.0 - rain) * (1.0 - _streak_layer((h, w), st, mean_angle, rng))
    sigma = _uniform(rng, st.blur)
    if sigma > 0:
        rain = ndimage.gaussian_filter(rain, sigma)
    rain = np.clip(rain, 0.0, 1.0).astype(np.float32)
    base = clean.astype(np.float32) / 255.0
    r = rain[..., None]
    out = base + r if st.blend == "additive" else 1.0 - (1.0 - base) * (1.0 - r)
    haze = _uniform(rng, st.haze)
    if haze > 0:
        t = _haze_map((h, w), haze, rng)[..., None]
        out = (1.0 - t) * out + t * st.haze_light
    rainy = np.clip(np.rint(np.clip(out, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return rainy, clean.copy(), rain


def render_many(jobs: list, workers: int | None = None) -> list:
    """``[render_rain(clean, style, seed)[0] for clean, style, seed in jobs]``, in order, on
    ``workers`` threads (default: up to 8 of the machine's cores; numpy and scipy release the GIL).
    Each rendering is a function of its own seed, so the result does not depend on ``workers``."""
    workers = max(1, min(8, os.cpu_count() or 1) if workers is None else int(workers))
    if workers == 1 or len(jobs) < 2:
        return [render_rain(clean, style, seed=seed)[0] for clean, style, seed in jobs]
    with ThreadPoolExecutor(workers, thread_name_prefix="mosslib-rain") as pool:
        return list(pool.map(lambda job: render_rain(job[0], job[1], seed=job[2])[0], jobs))
