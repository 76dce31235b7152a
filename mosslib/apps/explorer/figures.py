"""Figures of the rain memory: the image triptych, the nearest-item map, item usage, one item's
attention and nearest patches, the PCA of the items, and comparison grids."""
from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import numpy as np

from .analysis import ImageAnalysis, Patch, attention_map, attention_overlay, nearest_map_image, usage_summary

__all__ = ["figure_png", "fig_triptych", "fig_nearest", "item_from_x", "fig_usage", "fig_attention", "fig_gallery", "patch_mosaic", "fig_pca", "comparison_grid"]


# -- figures ----------------------------------------------------------------------------
def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.0, 4.0), layout: str | None = "constrained"):
    """A pyplot-free figure; ``layout=None`` (manual margins) renders about twice as fast."""
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only figures need it

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def figure_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib figure (no pyplot state involved)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _show(ax, image, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def fig_triptych(analysis: ImageAnalysis, title: str = ""):
    """Rainy input, derained output and the removed residual, side by side."""
    fig, ax = _figure(3, 1, (3.6, 3.0))
    _show(ax[0, 0], analysis.rainy, "rainy input")
    _show(ax[0, 1], analysis.derained, "derained output")
    _show(ax[0, 2], analysis.residual, "removed residual (stretched)")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def fig_nearest(analysis: ImageAnalysis, title: str = ""):
    """The nearest memory item (Eq. 2) at each position of z(x), one colour per item."""
    fig, ax = _figure(1, 1, (4.2, 3.6))
    used = np.unique(analysis.nearest).size
    _show(ax[0, 0], nearest_map_image(analysis), title or f"nearest item per position ({used} distinct items)")
    return fig


def item_from_x(x: float | None, num_items: int) -> int | None:
    """The item under a click at data coordinate ``x`` on :func:`fig_usage` (None outside)."""
    if x is None or not math.isfinite(x):
        return None
    i = int(round(x))
    return i if 0 <= i < num_items else None


def fig_usage(counts: np.ndarray, selected: int | None = None, title: str = ""):
    """How often each item is the nearest one over the image set; ``selected`` in red."""
    counts = np.asarray(counts)
    s = usage_summary(counts)
    fig, ax = _figure(1, 1, (7.0, 2.6), layout=None)  # redrawn at every item change: manual margins
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.19, top=0.88)
    a = ax[0, 0]
    edges = np.arange(counts.size + 1) - 0.5  # item i is the bin centred on x = i
    a.stairs(counts, edges, fill=True, color="#4477aa")  # one artist, fast for m = 512
    if selected is not None and 0 <= selected < counts.size:
        half = max(0.5, counts.size / 300)
        a.fill_between([selected - half, selected + half], 0, max(counts[selected], counts.max() * 0.02, 1),
                       color="#dd3333", step="post")
        a.axvline(selected, color="#dd3333", lw=0.8, alpha=0.8)
    a.set_xlim(-0.5, counts.size - 0.5)
    a.set_xlabel("memory item")
    a.set_ylabel("times nearest")
    head = f"{s['alive']} of {s['items']} items alive, {s['never_chosen']} never chosen"
    a.set_title(f"{title}: {head}" if title else head, fontsize=10)
    return fig


def fig_attention(analysis: ImageAnalysis, item: int):
    """a_ij of one item over the image (upsampled), as an overlay and as a raw map."""
    amap = attention_map(analysis, item)
    fig, ax = _figure(2, 1, (4.0, 3.4))
    _show(ax[0, 0], attention_overlay(analysis.rainy, amap), f"attention of item {item}")
    im = ax[0, 1].imshow(amap, cmap="inferno")
    ax[0, 1].set_title(f"a_ij, item {item} (max {amap.max():.2e})", fontsize=10)
    ax[0, 1].set_axis_off()
    fig.colorbar(im, ax=ax[0, 1], shrink=0.8)
    return fig


def fig_gallery(patches: Sequence[Patch], item: int, ncols: int = 8):
    """The input patches whose queries are nearest to an item (its prototypical patterns)."""
    n = max(len(patches), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, ax = _figure(ncols, nrows, (1.4, 1.6))
    for a in ax.flat:
        a.set_axis_off()
    for a, p in zip(ax.flat, patches):
        a.imshow(p.pixels, interpolation="nearest")
        a.set_title(f"{p.similarity:.2f}", fontsize=8)
    fig.suptitle(f"item {item}: the {len(patches)} nearest input patches (cosine)", fontsize=10)
    return fig


def patch_mosaic(patches: Sequence[Patch], ncols: int = 8, scale: int = 2, gap: int = 2) -> np.ndarray:
    """The gallery of :func:`fig_gallery` as one uint8 image (fast, for widgets)."""
    if not patches:
        return np.full((8, 8, 3), 255, np.uint8)
    p = patches[0].pixels.shape[0] * scale
    ncols = min(ncols, len(patches))
    nrows = math.ceil(len(patches) / ncols)
    out = np.full((nrows * (p + gap) - gap, ncols * (p + gap) - gap, 3), 255, np.uint8)
    for i, patch in enumerate(patches):
        r, c = divmod(i, ncols)
        big = np.repeat(np.repeat(patch.pixels, scale, axis=0), scale, axis=1)
        out[r * (p + gap):r * (p + gap) + p, c * (p + gap):c * (p + gap) + p] = big
    return out


def fig_pca(coords: Mapping[str, np.ndarray], usage: Mapping[str, np.ndarray], selected: int | None = None):
    """Items of each memory on shared PCA axes, coloured by log(1 + usage)."""
    names = list(coords)
    fig, ax = _figure(len(names), 1, (3.6, 3.4), layout=None)  # redrawn at every item change
    fig.subplots_adjust(left=0.1, right=0.86, bottom=0.15, top=0.9, wspace=0.35)
    allc = np.concatenate([coords[n] for n in names]) if names else np.zeros((1, 2))
    lo, hi = allc.min(0), allc.max(0)
    pad = 0.05 * (hi - lo + 1e-9)
    vmax = max(float(np.log1p(np.asarray(usage[n])).max()) for n in names) if names else 1.0
    for a, n in zip(ax.flat, names):
        c = np.log1p(np.asarray(usage[n], dtype=np.float64))
        order = np.argsort(c, kind="stable")  # used items drawn last, larger
        xy = coords[n][order]
        sc = a.scatter(xy[:, 0], xy[:, 1], c=c[order], s=np.where(c[order] > 0, 24, 6), cmap="viridis",
                       vmin=0, vmax=max(vmax, 1e-9))
        if selected is not None and 0 <= selected < len(coords[n]):
            a.scatter(*coords[n][selected], s=90, facecolors="none", edgecolors="#dd3333", linewidths=1.5)
        a.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        a.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        a.set_title(n, fontsize=10)
        a.set_xlabel("PC 1")
        a.set_ylabel("PC 2")
    if names:
        fig.colorbar(sc, cax=fig.add_axes([0.89, 0.15, 0.02, 0.75]), label="log(1 + usage)")
    return fig


def comparison_grid(rows: Sequence[Mapping[str, np.ndarray]], titles: Sequence[str] | None = None,
                    zoom: tuple[float, float, float] | None = None, cell: float = 3.0):
    """Rows of images under method columns (paper Fig. 1 and Fig. 5).

    ``rows``: one mapping method -> uint8 image per photo (all rows have the same methods).
    ``zoom``: (y, x, size) as fractions of the image: a second row per photo shows that crop
    enlarged, as in Fig. 1.
    """
    if not rows:
        raise ValueError("comparison_grid needs at least one row")
    methods = list(rows[0])
    per = 2 if zoom else 1
    fig, ax = _figure(len(methods), per * len(rows), (cell, cell * 0.75))
    for r, row in enumerate(rows):
        if list(row) != methods:
            raise ValueError(f"row {r} has methods {list(row)}, expected {methods}")
        for c, m in enumerate(methods):
            label = m if r == 0 else ""
            if titles and c == 0:
                label = f"{titles[r]}\n{m}" if label else titles[r]
            _show(ax[per * r, c], row[m], label)
            if zoom:
                H, W = row[m].shape[:2]
                y0, x0 = int(zoom[0] * H), int(zoom[1] * W)
                s = max(2, int(zoom[2] * min(H, W)))
                ax[per * r, c].add_patch(_rect(x0, y0, s))
                _show(ax[per * r + 1, c], row[m][y0:y0 + s, x0:x0 + s], "")
    return fig


def _rect(x0: int, y0: int, s: int):
    from matplotlib.patches import Rectangle  # lazy: matplotlib is slow to import and only figures need it

    return Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, edgecolor="#ff3030", linewidth=1.5)
