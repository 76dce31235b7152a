"""Views of the rain memory (paper section 3.1.2, Eq. 1-4): plain functions over a trained
MOEDN and a set of images, returning arrays or matplotlib figures.

* :func:`analyse` runs one image once: derained output, residual, the attention a_ij of
  Eq. 4 for every item (m, h, w) and the nearest item of Eq. 2 at every position of z(x).
* :class:`MemoryIndex` holds the normalised queries z_j(x) of a set of images: item usage
  (how often each item is the nearest one), and the k input patches whose queries are most
  similar to an item (its receptive field on the input: the "prototypical rain patterns").
* :func:`pca_2d` projects the items of one or more memories on shared principal axes.
* :class:`MemoryViews` caches all of that for several checkpoints; :mod:`mosslib.apps.widgets`
  wires it to controls and :func:`save_memory_figures` renders it statically.

Images are uint8 (H, W, 3); the network sees them in [-1, 1]. The latent grid is
(h, w) = (ceil(H / 2**num_scales), ceil(W / 2**num_scales)).
"""
from __future__ import annotations

import contextlib
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from ..method.checkpoint import CheckpointError, load_model
from ..data.layouts import open_dataset
from ..method.runs import config_of_run
from ..method.trainset import data_root
from ..data.imageio import read_rgb

__all__ = [
    "PRECISIONS",
    "ImageAnalysis",
    "MemoryIndex",
    "MemoryViews",
    "Patch",
    "analyse",
    "attention_map",
    "attention_overlay",
    "build_index",
    "comparison_grid",
    "derain_image",
    "fig_attention",
    "fig_gallery",
    "fig_nearest",
    "fig_pca",
    "fig_triptych",
    "fig_usage",
    "figure_png",
    "item_colors",
    "item_from_x",
    "nearest_map_image",
    "patch_mosaic",
    "pca_2d",
    "residual_image",
    "run_checkpoints",
    "run_image_sets",
    "save_memory_figures",
    "spread",
    "to_tensor",
    "to_uint8",
    "usage_summary",
    "usage_table",
]


# -- conversions -----------------------------------------------------------------------
def _check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be a uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    return image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [-1, 1]."""
    image = _check_image(image)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return (x / 127.5 - 1.0).unsqueeze(0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] -> uint8 (H, W, 3), clamped and rounded."""
    if x.dim() == 4:
        x = x[0]
    y = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return y.permute(1, 2, 0).cpu().numpy()


def _need_memory(model) -> None:
    if getattr(model, "memory", None) is None:
        raise ValueError("this MOEDN has no memory (use_memory=False): there is nothing to explore")


@torch.inference_mode()
def derain_image(model, image: np.ndarray) -> np.ndarray:
    """The model's derained output of one uint8 (H, W, 3) image, as uint8 (H, W, 3)."""
    return to_uint8(model(to_tensor(image)))


def residual_image(rainy: np.ndarray, derained: np.ndarray, gain: float | None = None) -> np.ndarray:
    """The removed residual |rainy - derained| as uint8, scaled by ``gain`` (default: so that
    the 99.5th percentile maps to white)."""
    r = np.abs(rainy.astype(np.float32) - derained.astype(np.float32))
    if gain is None:
        top = float(np.percentile(r, 99.5)) if r.size else 0.0
        gain = 255.0 / top if top > 0 else 1.0
    return np.clip(r * gain, 0, 255).round().astype(np.uint8)


# -- one image --------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageAnalysis:
    """One forward pass over one image.

    rainy, derained: uint8 (H, W, 3); attention: float32 (m, h, w), a_ij of Eq. 4 (sums to 1
    over items); nearest: int64 (h, w), the Eq. 2 argmax; multiple: pixels per latent cell.
    """

    rainy: np.ndarray
    derained: np.ndarray
    attention: np.ndarray
    nearest: np.ndarray
    multiple: int

    @property
    def residual(self) -> np.ndarray:
        return residual_image(self.rainy, self.derained)

    @property
    def num_items(self) -> int:
        return int(self.attention.shape[0])


PRECISIONS = ("fp32", "bf16")


def _autocast(precision: str):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def analyse(model, image: np.ndarray, precision: str = "fp32") -> ImageAnalysis:
    """Derain ``image`` and read the memory's attention in the same forward pass.

    z(x) is captured as the memory's input with a forward pre-hook (with or without fusion), so
    the image is encoded once. The input is channels-last (faster convolutions, same numbers). ``precision="bf16"`` runs the
    network under bf16 autocast (about 2-3x faster on CPUs with bf16 units; the similarities
    of Eq. 1 are still computed in fp32 from the bf16 z(x)).
    """
    _need_memory(model)
    x = to_tensor(image).contiguous(memory_format=torch.channels_last)
    captured: list[torch.Tensor] = []
    hook = model.memory.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))  # z(x), the query
    try:
        with _autocast(precision):
            y = model(x).float()
    finally:
        hook.remove()
    z = captured[-1].float()  # (1, c, h, w)
    sim = model.memory.similarity(z)[0]  # (n, m), Eq. 1
    h, w = z.shape[-2:]
    attn = sim.softmax(dim=-1).t().reshape(-1, h, w)  # Eq. 4: (m, h, w)
    nearest = sim.argmax(dim=-1).reshape(h, w)  # Eq. 2
    return ImageAnalysis(
        rainy=np.asarray(image),
        derained=to_uint8(y),
        attention=attn.float().numpy().copy(),
        nearest=nearest.numpy().astype(np.int64),
        multiple=int(model.cfg.multiple),
    )


def attention_map(analysis: ImageAnalysis, item: int) -> np.ndarray:
    """a_ij of one item upsampled (bilinear) to the image size: float32 (H, W)."""
    if not 0 <= item < analysis.num_items:
        raise ValueError(f"item {item} out of range: the memory has {analysis.num_items} items")
    H, W = analysis.rainy.shape[:2]
    a = torch.from_numpy(analysis.attention[item])[None, None]
    h, w = a.shape[-2:]
    up = F.interpolate(a, size=(h * analysis.multiple, w * analysis.multiple), mode="bilinear", align_corners=False)
    return up[0, 0, :H, :W].numpy()


def _colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](values)[..., :3] * 255).round().astype(np.uint8)


def attention_overlay(image: np.ndarray, amap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """A heat map of ``amap`` (H, W) blended over the image (contrast stretched): uint8."""
    lo, hi = float(amap.min()), float(amap.max())
    v = (amap - lo) / (hi - lo) if hi > lo else np.zeros_like(amap)
    heat = _colormap(v).astype(np.float32)
    out = (1 - alpha) * image.astype(np.float32) + alpha * heat
    return np.clip(out, 0, 255).round().astype(np.uint8)


def item_colors(num_items: int, seed: int = 0) -> np.ndarray:
    """A distinct colour per item (golden-ratio hues, shuffled lightness): uint8 (m, 3)."""
    import colorsys

    rng = np.random.default_rng(seed)
    hues = (np.arange(num_items) * 0.618033988749895) % 1.0
    light = rng.uniform(0.35, 0.7, num_items)
    return np.array([[round(255 * c) for c in colorsys.hls_to_rgb(h, l, 0.85)] for h, l in zip(hues, light)], np.uint8)


def nearest_map_image(analysis: ImageAnalysis, alpha: float = 0.55) -> np.ndarray:
    """The nearest item at each position of z(x), one colour per item, over the image: uint8."""
    colors = item_colors(analysis.num_items)
    cells = colors[analysis.nearest]  # (h, w, 3)
    k = analysis.multiple
    full = np.repeat(np.repeat(cells, k, axis=0), k, axis=1)
    H, W = analysis.rainy.shape[:2]
    out = (1 - alpha) * analysis.rainy.astype(np.float32) + alpha * full[:H, :W].astype(np.float32)
    return np.clip(out, 0, 255).round().astype(np.uint8)


# -- a set of images --------------------------------------------------------------------
@dataclass(frozen=True)
class Patch:
    """An input patch whose query is near an item: where it is and how similar (cosine)."""

    image: str
    row: int  # latent position
    col: int
    similarity: float
    pixels: np.ndarray  # uint8 (P, P, 3)


class MemoryIndex:
    """The normalised queries of a set of images for one model: usage and nearest patches."""

    def __init__(self, items: torch.Tensor, names: list[str], images: list[np.ndarray],
                 queries: list[torch.Tensor], grids: list[tuple[int, int]], multiple: int):
        self.items = F.normalize(items.float(), dim=1)  # (m, c)
        self.names, self.images, self.grids, self.multiple = names, images, grids, multiple
        self.queries = torch.cat(queries) if queries else torch.zeros(0, items.shape[1])  # (N, c)
        self.offsets = np.cumsum([0] + [q.shape[0] for q in queries])
        sims = self.queries @ self.items.t() if len(self.queries) else torch.zeros(0, len(items))
        self.nearest = sims.argmax(dim=1).numpy() if len(self.queries) else np.zeros(0, np.int64)  # (N,)
        self.counts = np.bincount(self.nearest, minlength=len(items)).astype(np.int64)  # (m,)

    @property
    def num_items(self) -> int:
        return int(self.items.shape[0])

    def _locate(self, flat: int) -> tuple[int, int, int]:
        i = int(np.searchsorted(self.offsets, flat, side="right") - 1)
        local = flat - int(self.offsets[i])
        w = self.grids[i][1]
        return i, local // w, local % w

    def nearest_patches(self, item: int, k: int = 8, patch: int | None = None) -> list[Patch]:
        """The k queries most similar to item ``item`` (cosine, Eq. 1), as input patches of
        ``patch`` pixels (default 4 latent cells) centred on their latent cells."""
        if not 0 <= item < self.num_items:
            raise ValueError(f"item {item} out of range: the memory has {self.num_items} items")
        if len(self.queries) == 0 or k < 1:
            return []
        patch = patch or 4 * self.multiple
        sims = self.queries @ self.items[item]  # (N,)
        top = torch.topk(sims, min(k, len(sims)))
        out = []
        for s, flat in zip(top.values.tolist(), top.indices.tolist()):
            i, r, c = self._locate(flat)
            out.append(Patch(self.names[i], r, c, float(s), self._crop(self.images[i], r, c, patch)))
        return out

    def _crop(self, image: np.ndarray, r: int, c: int, patch: int) -> np.ndarray:
        padded = np.pad(image, ((patch, patch), (patch, patch), (0, 0)), mode="edge")
        cy = patch + int((r + 0.5) * self.multiple)
        cx = patch + int((c + 0.5) * self.multiple)
        y0, x0 = cy - patch // 2, cx - patch // 2
        return padded[y0:y0 + patch, x0:x0 + patch].copy()


@torch.inference_mode()
def build_index(model, images: Mapping[str, np.ndarray], precision: str = "fp32") -> MemoryIndex:
    """Encode every image once (z(x), normalised per position) for usage and galleries."""
    _need_memory(model)
    names, arrays, queries, grids = [], [], [], []
    for name, image in images.items():
        image = _check_image(image, f"image {name!r}")
        with _autocast(precision):
            z = model.encode(to_tensor(image).contiguous(memory_format=torch.channels_last)).float()  # (1, c, h, w)
        grids.append(tuple(z.shape[-2:]))
        queries.append(F.normalize(z[0].flatten(1).t().float(), dim=1))  # (h*w, c)
        names.append(name)
        arrays.append(image)
    return MemoryIndex(model.memory.items.detach().cpu(), names, arrays, queries, grids, int(model.cfg.multiple))


def usage_summary(counts: np.ndarray) -> dict:
    """How many items are alive (chosen at least once) and how many were never chosen."""
    counts = np.asarray(counts)
    alive = int((counts > 0).sum())
    return {"items": int(counts.size), "alive": alive, "never_chosen": int(counts.size - alive),
            "queries": int(counts.sum()), "top_item": int(counts.argmax()) if counts.size else -1}


def pca_2d(item_sets: Sequence[torch.Tensor | np.ndarray]) -> list[np.ndarray]:
    """Project the unit-normalised items of one or more memories (each (m, c)) on the first two
    principal axes of all of them together, so that memories share axes: [(m, 2), ...]."""
    mats = [F.normalize(torch.as_tensor(np.asarray(s), dtype=torch.float64), dim=1) for s in item_sets]
    if not mats:
        return []
    allv = torch.cat(mats)
    mean = allv.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(allv - mean, full_matrices=False)
    axes = vh[:2]  # (2, c)
    # a deterministic sign: the largest entry of each axis is positive
    signs = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    axes = axes * signs
    if axes.shape[0] < 2:
        axes = torch.cat([axes, torch.zeros(2 - axes.shape[0], axes.shape[1], dtype=axes.dtype)])
    return [((m - mean) @ axes.t()).numpy() for m in mats]


# -- figures ----------------------------------------------------------------------------
def _figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.0, 4.0), layout: str | None = "constrained"):
    """A pyplot-free figure; ``layout=None`` (manual margins) renders about twice as fast."""
    from matplotlib.figure import Figure

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
    from matplotlib.patches import Rectangle

    return Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, edgecolor="#ff3030", linewidth=1.5)


# -- cached state over checkpoints x images ---------------------------------------------
class MemoryViews:
    """Analyses, indices and projections for named checkpoints and named images, cached.

    ``models``: name -> MOEDN (e.g. {"pre-trained": ..., "self-trained": ...});
    ``images``: name -> uint8 image or a path (read on first use); ``index_images``: the names
    used for usage and galleries (default: all images given at construction); ``precision``:
    "fp32" (default) or "bf16" (faster, see :func:`analyse`). The models are switched to the
    channels-last memory format (same results, faster convolutions).
    """

    def __init__(self, models: Mapping[str, object], images: Mapping[str, np.ndarray | str | Path],
                 index_images: Sequence[str] | None = None, cache_size: int = 8, precision: str = "fp32"):
        _autocast(precision)  # validates
        if not models:
            raise ValueError("MemoryViews needs at least one model")
        for name, model in models.items():
            _need_memory(model)
        sizes = {n: m.memory.num_items for n, m in models.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the checkpoints have memories of different sizes: {sizes}")
        self.models = {n: m.to(memory_format=torch.channels_last) for n, m in models.items()}
        self.precision = precision
        self._images: dict[str, np.ndarray | str | Path] = dict(images)
        self.index_images = list(index_images) if index_images is not None else list(self._images)
        self._analyses: OrderedDict[tuple[str, str], ImageAnalysis] = OrderedDict()
        self._indices: dict[str, MemoryIndex] = {}
        self._pca: dict[str, np.ndarray] | None = None
        self.cache_size = cache_size

    @property
    def num_items(self) -> int:
        return next(iter(self.models.values())).memory.num_items

    @property
    def image_names(self) -> list[str]:
        return list(self._images)

    def image(self, name: str) -> np.ndarray:
        if name not in self._images:
            raise KeyError(f"no image named {name!r}; known: {self.image_names[:5]}...")
        value = self._images[name]
        if not isinstance(value, np.ndarray):
            value = self._images[name] = read_rgb(value)
        return value

    def add_image(self, name: str, image: np.ndarray) -> None:
        """Add (or replace) an image, e.g. an uploaded file; it is not added to the index."""
        self._images[name] = _check_image(image, f"image {name!r}")
        for key in [k for k in self._analyses if k[1] == name]:
            del self._analyses[key]

    def analysis(self, checkpoint: str, name: str) -> ImageAnalysis:
        key = (checkpoint, name)
        if key in self._analyses:
            self._analyses.move_to_end(key)
            return self._analyses[key]
        result = analyse(self.models[checkpoint], self.image(name), self.precision)
        self._analyses[key] = result
        while len(self._analyses) > self.cache_size:
            self._analyses.popitem(last=False)
        return result

    def index(self, checkpoint: str) -> MemoryIndex:
        if checkpoint not in self._indices:
            images = {n: self.image(n) for n in self.index_images}
            self._indices[checkpoint] = build_index(self.models[checkpoint], images, self.precision)
        return self._indices[checkpoint]

    def usage(self, checkpoint: str) -> np.ndarray:
        """Times each item is the nearest one over the index images: (m,)."""
        return self.index(checkpoint).counts

    def pca(self) -> dict[str, np.ndarray]:
        """Items of every checkpoint on shared PCA axes: name -> (m, 2)."""
        if self._pca is None:
            names = list(self.models)
            coords = pca_2d([self.models[n].memory.items.detach().cpu() for n in names])
            self._pca = dict(zip(names, coords))
        return self._pca

    def default_item(self, checkpoint: str) -> int:
        """The most used item over the index images."""
        counts = self.usage(checkpoint)
        return int(counts.argmax()) if counts.size else 0


def save_memory_figures(views: MemoryViews, out_dir: str | Path, image: str | None = None,
                        items: Sequence[int] | None = None, k: int = 8, dpi: int = 100) -> list[Path]:
    """Render the explorer's views statically to ``out_dir/memory_*.png`` (for papermill runs).

    For every checkpoint: triptych and nearest-item map of ``image`` (default: the first
    index image), the usage histogram, and attention maps plus galleries of ``items``
    (default: the three most used items; earlier renders' per-item figures of that checkpoint
    are removed); and one PCA figure over all checkpoints.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image = image or (views.index_images[0] if views.index_images else views.image_names[0])
    written = []

    def save(fig, name):
        path = out_dir / f"memory_{name}.png"
        fig.savefig(path, dpi=dpi)
        written.append(path)

    usage = {}
    for ckpt in views.models:
        slug = "".join(ch if ch.isalnum() else "_" for ch in ckpt).strip("_").lower() or "model"
        an = views.analysis(ckpt, image)
        counts = views.usage(ckpt)
        usage[ckpt] = counts
        chosen = list(items) if items is not None else [int(i) for i in np.argsort(-counts, kind="stable")[:3]]
        save(fig_triptych(an, f"{ckpt}: {image}"), f"{slug}_triptych")
        save(fig_nearest(an), f"{slug}_nearest")
        save(fig_usage(counts, chosen[0] if chosen else None, ckpt), f"{slug}_usage")
        for kind in ("attention", "gallery"):  # a re-render may choose other items: drop the old ones
            for stale in out_dir.glob(f"memory_{slug}_{kind}_*.png"):
                stale.unlink()
        for item in chosen:
            save(fig_attention(an, item), f"{slug}_attention_{item}")
            save(fig_gallery(views.index(ckpt).nearest_patches(item, k), item), f"{slug}_gallery_{item}")
    save(fig_pca(views.pca(), usage), "pca")
    return written


def usage_table(views: MemoryViews):
    """One row per checkpoint: items, alive, never chosen, queries, most used item."""
    import pandas as pd

    rows = [{"checkpoint": c, **usage_summary(views.usage(c))} for c in views.models]
    return pd.DataFrame(rows).set_index("checkpoint")


# -- a training run of the book ---------------------------------------------------------
CHECKPOINTS = {"pre-trained": "pretrain.pt", "self-trained": "best.pt"}


def run_checkpoints(run: str | Path) -> dict[str, object]:
    """The memories of a run folder to compare: "pre-trained" (``pretrain.pt``, the memory
    after supervised pre-training) and "self-trained" (``best.pt``); missing files are left out."""
    run = Path(run)
    models = {label: load_model(run / name) for label, name in CHECKPOINTS.items() if (run / name).is_file()}
    if not models:
        raise CheckpointError(f"{run}: no {' or '.join(CHECKPOINTS.values())} in this run folder")
    return models


def spread(items: Sequence, n: int | None) -> list:
    """At most ``n`` elements of ``items``, evenly spaced, first included (all when n is falsy)."""
    items = list(items)
    if not n or n >= len(items):
        return items
    return [items[int(i * len(items) / n)] for i in range(n)]


def run_image_sets(run: str | Path, max_per_source: int | None = None) -> dict[str, dict[str, Path]]:
    """Images of a run's data for the explorer: {"test": the test set's rainy images (dense and
    sparse groups), "real": its unlabeled real (or real-like) images}, name -> path."""

    data = config_of_run(run).data
    root = data_root(data)
    test = {}
    for group, pairs in open_dataset(root / data.test).test_groups().items():
        for pair in pairs:
            if pair.half is None:
                test[f"test/{group}/{pair.name}"] = pair.rainy
    real = {}
    if data.unlabeled:
        ds = open_dataset(root / data.unlabeled)
        for split in ds.splits.values():
            for path in split.unlabeled:
                real[f"real/{path.name}"] = path
    return {
        "test": dict(spread(list(test.items()), max_per_source)),
        "real": dict(spread(list(real.items()), max_per_source)),
    }
