"""Overlapping tiles with blended seams, so any image size runs in bounded memory.

An image (H, W, C) is cut into a grid of tiles of side ``tile`` that overlap by at least
``overlap`` pixels; each tile goes through ``fn`` and the outputs are blended with raised-cosine
ramps over the overlaps. The ramps are normalised per axis so that the weights of the tiles
covering a pixel sum to exactly 1 (a partition of unity), so a pixel-wise ``fn`` comes back
exactly. Tile origins are multiples of ``align`` (the network's ``2**num_scales``), so every
tile sees the same down-sampling grid as the whole image would.

Memory: the output array plus one float32 band of ``tile`` rows by W columns, never a
full-size float buffer; finished rows are converted (``finalize``) as soon as no later tile
touches them. Defaults: images above :data:`TILE_THRESHOLD` pixels (1024 * 1024) are tiled
with ``tile=512``, ``overlap=32``; smaller ones run whole.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "TILE_THRESHOLD",
    "axis_weights",
    "choose_tile",
    "tile_spans",
    "tiled_map",
]

TILE_THRESHOLD = 1024 * 1024  # pixels; larger images are tiled by default
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32


def choose_tile(height: int, width: int, tile: int | None = None, threshold: int = TILE_THRESHOLD) -> int:
    """The tile side to use: ``tile`` if given (0: whole image), else whole up to ``threshold`` pixels."""
    if tile is None:
        tile = 0 if height * width <= threshold else DEFAULT_TILE
    if tile < 0:
        raise ValueError(f"tile must be >= 0 (0: the whole image), got {tile}")
    return tile if tile > 0 else max(height, width, 1)


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Half-open spans [start, stop) covering [0, length): starts are multiples of ``align``.

    Consecutive spans overlap by at least ``overlap`` pixels; spans have length ``tile``
    except the last, which ends at ``length`` (up to ``tile + align - 1`` long, since its start
    is rounded down to ``align``).
    """
    if length < 1:
        raise ValueError(f"cannot tile an axis of length {length}")
    if align < 1 or overlap < 0:
        raise ValueError(f"need align >= 1 and overlap >= 0, got align={align}, overlap={overlap}")
    if length <= tile:  # one tile covers the axis; overlap does not matter
        return [(0, length)]
    if tile - overlap < align:
        raise ValueError(
            f"tile ({tile}) must exceed overlap ({overlap}) by at least {align} pixels "
            f"(the network's size multiple)"
        )
    stride = (tile - overlap) // align * align
    starts = list(range(0, length - tile, stride))  # every regular tile ends before `length`
    last = (length - tile) // align * align
    if last > starts[-1]:
        starts.append(last)
    return [(s, s + tile) for s in starts[:-1]] + [(starts[-1], length)]


def _ramp(n: int) -> np.ndarray:
    """Raised cosine rising over n samples, strictly inside (0, 1): r[k] + r[n-1-k] = 1."""
    k = np.arange(n, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * (k + 0.5) / n)


def axis_weights(spans: list[tuple[int, int]], length: int) -> list[np.ndarray]:
    """Per-span blending weights along one axis, normalised to sum to 1 at every position.

    Each span ramps up over its overlap with the previous span and down over its overlap
    with the next one (weight 1 elsewhere, including at the image border).
    """
    raw = []
    for i, (s, e) in enumerate(spans):
        w = np.ones(e - s)
        if i > 0 and spans[i - 1][1] > s:
            n = spans[i - 1][1] - s
            w[:n] = np.minimum(w[:n], _ramp(n))
        if i + 1 < len(spans) and spans[i + 1][0] < e:
            n = e - spans[i + 1][0]
            w[-n:] = np.minimum(w[-n:], _ramp(n)[::-1])
        raw.append(w)
    total = np.zeros(length)
    for (s, e), w in zip(spans, raw):
        total[s:e] += w
    return [(w / total[s:e]).astype(np.float32) for (s, e), w in zip(spans, raw)]


def tiled_map(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    align: int = 1,
    finalize: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Apply ``fn`` to overlapping tiles of ``image`` (H, W, C) and blend the results.

    ``fn``: an (h, w, C) view of ``image`` -> (h, w, C_out) float array. ``finalize``: a
    blended float32 band (rows, W, C_out) -> the output's dtype (default: float32 as is).
    Returns (H, W, C_out). Peak extra memory: about 2 bands of ``tile`` rows x W x C_out float32.
    """
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"tiled_map expects an (H, W, C) image, got shape {image.shape}")
    height, width = image.shape[:2]
    finalize = finalize or (lambda band: band)
    ys, xs = tile_spans(height, tile, overlap, align), tile_spans(width, tile, overlap, align)
    wy, wx = axis_weights(ys, height), axis_weights(xs, width)
    out, carry = None, None
    for i, (y0, y1) in enumerate(ys):
        band = None
        for j, (x0, x1) in enumerate(xs):
            result = np.array(fn(image[y0:y1, x0:x1]), dtype=np.float32, copy=None)
            if result.ndim != 3 or result.shape[:2] != (y1 - y0, x1 - x0):
                raise ValueError(f"tile function returned shape {result.shape} for a {y1 - y0}x{x1 - x0} tile")
            if band is None:
                band = np.zeros((y1 - y0, width, result.shape[2]), dtype=np.float32)
                if carry is not None:
                    band[: carry.shape[0]] += carry
            result *= (wy[i][:, None] * wx[j][None, :])[..., None]
            band[:, x0:x1] += result
        done = (ys[i + 1][0] if i + 1 < len(ys) else height) - y0  # rows no later tile touches
        chunk = finalize(band[:done])
        if out is None:
            out = np.empty((height, width, chunk.shape[2]), dtype=chunk.dtype)
        out[y0 : y0 + done] = chunk
        carry = band[done:].copy()
    return out
