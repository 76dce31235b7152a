"""The tiler: spans cover the image with aligned, overlapping tiles; blend weights are a
partition of unity; memory stays at a band of rows, never a full-size float buffer."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosslib.apps.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TILE_THRESHOLD,
    axis_weights,
    choose_tile,
    tile_spans,
    tiled_map,
)

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def tilings(draw):
    """(length, tile, overlap, align) with tile - overlap >= align."""
    align = draw(st.sampled_from([1, 2, 4, 8]))
    overlap = draw(st.integers(0, 40))
    tile = draw(st.integers(overlap + align, overlap + align + 80))
    length = draw(st.integers(1, 400))
    return length, tile, overlap, align


@SETTINGS
@given(tilings())
def test_spans_cover_overlap_and_align(case):
    length, tile, overlap, align = case
    spans = tile_spans(length, tile, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert s0 < s1 and e0 < e1, spans  # strictly increasing
        assert e0 - s1 >= min(overlap, length), (spans, overlap)  # seams get the requested overlap
    for s, e in spans:
        assert s % align == 0
        assert 0 < e - s <= max(tile + align - 1, 1) and e <= length
    if length <= tile:
        assert spans == [(0, length)]


@SETTINGS
@given(tilings())
def test_weights_are_a_partition_of_unity(case):
    length, tile, overlap, align = case
    spans = tile_spans(length, tile, overlap, align)
    weights = axis_weights(spans, length)
    total = np.zeros(length)
    for (s, e), w in zip(spans, weights):
        assert w.shape == (e - s,) and (w > 0).all() and (w <= 1 + 1e-6).all()
        total[s:e] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_weights_ramp_only_inside_overlaps():
    spans = tile_spans(300, 128, 32)
    weights = axis_weights(spans, 300)
    assert weights[0][0] == 1.0 and weights[-1][-1] == 1.0  # image borders are not faded
    first_overlap = spans[0][1] - spans[1][0]
    w = weights[0]
    assert (w[: len(w) - first_overlap] == 1.0).all()
    tail = w[len(w) - first_overlap :]
    assert (np.diff(tail) < 0).all() and tail[-1] < 0.05  # a smooth ramp down to ~0


def test_invalid_tilings_are_clear_errors():
    with pytest.raises(ValueError, match="must exceed overlap"):
        tile_spans(1000, 40, 36, align=8)
    with pytest.raises(ValueError, match="length"):
        tile_spans(0, 64, 8)
    with pytest.raises(ValueError):
        choose_tile(10, 10, tile=-1)


def test_choose_tile_threshold():
    side = int(TILE_THRESHOLD**0.5)
    assert choose_tile(side, side) == side  # fits whole
    assert choose_tile(side + 1, side) == DEFAULT_TILE
    assert choose_tile(5000, 5000, tile=0) == 5000  # 0: never tile
    assert choose_tile(50, 70, tile=64) == 64
    assert DEFAULT_OVERLAP == 32


@SETTINGS
@given(tilings(), st.integers(1, 90), st.integers(1, 4))
def test_pointwise_function_comes_back_exactly(case, width, channels):
    height, tile, overlap, align = case
    height = min(height, 120)
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    out = tiled_map(
        image,
        lambda t: t.astype(np.float32) * 2.0,
        tile,
        overlap,
        align,
        finalize=lambda b: np.rint(b).astype(np.int32),
    )
    assert out.shape == image.shape and out.dtype == np.int32
    np.testing.assert_array_equal(out, image.astype(np.int32) * 2)


def test_seams_blend_between_tiles():
    """Each tile answers a constant: pixels seen by one tile get it exactly, overlaps a mix."""
    calls = []

    def fn(t):
        calls.append(t.shape)
        return np.full(t.shape[:2] + (1,), float(len(calls)), dtype=np.float32)

    out = tiled_map(np.zeros((1, 200, 1), np.uint8), fn, tile=100, overlap=30)
    spans = tile_spans(200, 100, 30)
    assert len(calls) == len(spans) == 3
    row = out[0, :, 0]
    assert row[0] == 1.0 and row[-1] == 3.0
    s1, e0 = spans[1][0], spans[0][1]
    seam = row[s1:e0]
    assert (np.diff(seam) > 0).all() and 1.0 < seam.min() and seam.max() < 2.0


def test_output_channels_may_differ_from_input():
    image = np.arange(30 * 50 * 3, dtype=np.float32).reshape(30, 50, 3)
    out = tiled_map(image, lambda t: t[..., :1] + t[..., 1:2], tile=16, overlap=4, align=4)
    np.testing.assert_allclose(out[..., 0], image[..., 0] + image[..., 1], rtol=1e-6)


def test_bad_tile_function_is_reported():
    with pytest.raises(ValueError, match="returned shape"):
        tiled_map(np.zeros((40, 40, 3), np.uint8), lambda t: np.zeros((3, 3, 3)), tile=16, overlap=4)


def test_memory_is_a_band_not_a_full_float_image():
    """numpy allocations are traced: the tiler needs far less than one float32 copy of the image."""
    image = np.zeros((1600, 2000, 3), np.uint8)
    full_float = image.size * 4
    tracemalloc.start()
    try:
        out = tiled_map(image, lambda t: t.astype(np.float32), 256, 32, 8, finalize=lambda b: b.astype(np.uint8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == image.shape
    assert peak < image.nbytes + full_float / 2, (peak, full_float)  # naive: > nbytes + full_float
