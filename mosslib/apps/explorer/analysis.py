"""Views of the rain memory (paper section 3.1.2, Eq. 1-4): plain functions over a trained
MOEDN and a set of images, returning arrays or matplotlib figures.

* :func:`analyse` runs one image once: derained output, residual, the attention a_ij of
  Eq. 4 for every item (m, h, w) and the nearest item of Eq. 2 at every position of z(x).
* :class:`MemoryIndex` holds the normalised queries z_j(x) of a set of images: item usage
  (how often each item is the nearest one), and the k input patches whose queries are most
  similar to an item (its receptive field on the input: the "prototypical rain patterns").
* :func:`pca_2d` projects the items of one or more memories on shared principal axes.
* :class:`MemoryViews` caches all of that for several checkpoints; :mod:`mosslib.apps.explorer.widgets`
  wires it to controls and :func:`save_memory_figures` renders it statically.

Images are uint8 (H, W, 3); the network sees them in [-1, 1]. The latent grid is
(h, w) = (ceil(H / 2**num_scales), ceil(W / 2**num_scales)).
"""
from __future__ import annotations

import colorsys
import contextlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...data import images

__all__ = ["to_tensor", "to_uint8", "derain_image", "residual_image", "ImageAnalysis", "analyse", "attention_map", "attention_overlay", "item_colors", "nearest_map_image", "Patch", "MemoryIndex", "build_index", "usage_summary", "pca_2d", "PRECISIONS"]


# -- conversions -----------------------------------------------------------------------
def check_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what} must be a uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    return image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [-1, 1] (:func:`mosslib.data.images.to_batch`)."""
    return images.to_batch(check_image(image))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [-1, 1] -> uint8 (H, W, 3), clamped and rounded."""
    return images.to_uint8_image(x[:1] if x.dim() == 4 else x)


def require_memory(model) -> None:
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


def autocast_for(precision: str):
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
    require_memory(model)
    x = to_tensor(image).contiguous(memory_format=torch.channels_last)
    captured: list[torch.Tensor] = []
    hook = model.memory.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))  # z(x), the query
    try:
        with autocast_for(precision):
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
    from matplotlib import colormaps  # lazy: matplotlib is slow to import and only figures need it

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
    require_memory(model)
    names, arrays, queries, grids = [], [], [], []
    for name, image in images.items():
        image = check_image(image, f"image {name!r}")
        with autocast_for(precision):
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

