"""The explorer's state: a cache of analyses over checkpoints x images, the static memory
figures of the book, the usage table, and the checkpoints and image sets of a book run."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .analysis import ImageAnalysis, MemoryIndex, autocast_for, check_image, require_memory, analyse, build_index, pca_2d, usage_summary
from .figures import fig_attention, fig_gallery, fig_nearest, fig_pca, fig_triptych, fig_usage
from ...data.imageio import read_rgb
from ...data.layouts import open_dataset
from ...method.archive import PRETRAINED as ARCHIVED_PRETRAINED  # a run restored from the archive
from ...method.checkpoint import CheckpointError, load_model
from ...method.lineage import pretrain_of
from ...method.runs import config_of_run
from ...method.trainset import data_root

__all__ = ["MemoryViews", "save_memory_figures", "usage_table", "run_checkpoints", "spread", "run_image_sets", "CHECKPOINTS"]


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
        autocast_for(precision)  # validates
        if not models:
            raise ValueError("MemoryViews needs at least one model")
        for name, model in models.items():
            require_memory(model)
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
        self._images[name] = check_image(image, f"image {name!r}")
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
    import pandas as pd  # lazy: pandas is slow to import and only this table needs it

    rows = [{"checkpoint": c, **usage_summary(views.usage(c))} for c in views.models]
    return pd.DataFrame(rows).set_index("checkpoint")


# -- a training run of the book ---------------------------------------------------------
CHECKPOINTS = {"pre-trained": "pretrain.pt", "self-trained": "best.pt"}


def run_checkpoints(run: str | Path) -> dict[str, object]:
    """The memories of a run folder to compare: "pre-trained" (after supervised pre-training:
    ``pretrain.pt``, a fork's source's, or a restored run's ``pretrained-model.pt``) and
    "self-trained" (``best.pt``); missing files are left out."""
    run = Path(run)
    paths = {label: run / name for label, name in CHECKPOINTS.items()}
    if not paths["pre-trained"].is_file():  # a forked run's is its source's; a restored run's, archived
        paths["pre-trained"] = pretrain_of(run) or run / ARCHIVED_PRETRAINED
    models = {label: load_model(path) for label, path in paths.items() if path.is_file()}
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
