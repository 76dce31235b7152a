"""The data of one training run, assembled from a :class:`~mosslib.method.profiles.DataConfig`.

D_L: the labeled split minus a validation split (``val_fraction``, for model selection) and, in
the limited-label setting, minus the pairs whose labels are dropped (they join D_U as rainy
images). Optional extra labeled pairs: procedural rain (``extra_rain`` style) rendered on D_L's
clean images; likewise ``val_extra_rain`` on the validation clean images (so that model selection
also sees heavy rain when D_L's own rain is light). D_U: the unlabeled folder plus the
dropped-label rainy images. The test set is not touched here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.embedded import ensure
from ..data.layouts import open_dataset
from ..data.rain import render_many
from ..data.sampling import ImageBank, ImageSampler, PairSampler, limited_labels, validation_split
from .profiles import DataConfig, TrainConfig
from .selection import SelectionPolicy

__all__ = ["TrainData", "data_root", "build_training_data", "test_dataset"]


def data_root(data: DataConfig) -> Path:
    """The folder a DataConfig's relative paths start from (the embedded data when root is "")."""
    if data.root:
        root = Path(data.root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: data root not found (set DATA_ROOT or pass --data)")
        return root
    return ensure(size=data.embedded_size)


def test_dataset(data: DataConfig):
    """The test set of a configuration, as a :class:`mosslib.data.layouts.Dataset`."""
    return open_dataset(data_root(data) / data.test)


def _centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    if side <= 0:
        return img
    h, w = img.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[top : top + side, left : left + side]


def _rained_validation(cleans: list, styles: tuple[str, ...], seed: int) -> list:
    """[(style, (rainy, clean))]: each of ``styles`` (``("dense", "heavy")``, the selection policy's
    ``extra_rain``) rendered once on every clean image."""
    if not styles:
        return []
    # a seed stream of its own: never one of the training pairs' renderings
    jobs = [(style, clean, 7_000_001 + seed * 1_000_003 + s * 100_003 + i)
            for s, style in enumerate(styles)
            for i, clean in enumerate(cleans)]
    rendered = render_many([(clean, style, k) for style, clean, k in jobs])
    return [(style, (rainy, clean)) for (style, clean, _), rainy in zip(jobs, rendered)]


@dataclass
class TrainData:
    labeled: object  # PairSampler: batch(seed) -> (x, y)
    unlabeled: object | None  # ImageSampler: batch(seed) -> x
    val: list = field(default_factory=list)  # [(rainy uint8, clean uint8)]
    counts: dict = field(default_factory=dict)
    val_groups: list = field(default_factory=list)  # per val pair: "labeled" or the procedural rain style

    def with_batch_size(self, batch_size: int) -> "TrainData":
        """The same data with both samplers drawing ``batch_size`` crops per batch (no reloading)."""
        un = self.unlabeled.with_batch_size(batch_size) if self.unlabeled is not None else None
        return dataclasses.replace(self, labeled=self.labeled.with_batch_size(batch_size), unlabeled=un)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.counts.items())


def build_training_data(cfg: TrainConfig, rank: int = 0, world: int = 1) -> TrainData:
    d = cfg.data
    root = data_root(d)
    pairs = open_dataset(root / d.labeled).split(d.labeled_split).pairs
    train_pairs, val_pairs = validation_split(pairs, d.val_fraction, cfg.seed)
    labeled_pairs, dropped = limited_labels(train_pairs, d.label_fraction, cfg.seed)
    bank = ImageBank(labeled_pairs)
    n_extra = 0
    if d.extra_rain and d.extra_rain_copies > 0:
        cleans = list(bank.targets)
        jobs = [(i, style.strip(), copy, cfg.seed * 1_000_003 + (s * 97 + copy) * 100_003 + i)
                for s, style in enumerate(d.extra_rain.split(","))
                for copy in range(d.extra_rain_copies)
                for i in range(len(cleans))]
        rendered = render_many([(cleans[i], style, seed) for i, style, _, seed in jobs])
        for (i, style, copy, _), rainy in zip(jobs, rendered):
            bank.inputs.append(rainy)
            bank.targets.append(cleans[i])
            bank.names.append(f"{bank.names[i]}-{style}{copy}")
            n_extra += 1
    sources = list(dropped)
    n_folder = 0
    if d.unlabeled:
        upath = Path(d.unlabeled) if Path(d.unlabeled).is_absolute() else root / d.unlabeled
        folder = open_dataset(upath).split("all").unlabeled
        sources += folder
        n_folder = len(folder)
    val = [(_centre_crop(r, d.val_max_side), _centre_crop(c, d.val_max_side)) for r, c in (p.load() for p in val_pairs)]
    val_groups = ["labeled"] * len(val)
    for style, pair in _rained_validation([c for _, c in val], SelectionPolicy.of(cfg).extra_rain, cfg.seed):
        val.append(pair)
        val_groups.append(style)
    labeled_sampler = PairSampler(bank, d.crop, d.batch_size, cfg.seed)
    unlabeled_sampler = ImageSampler(ImageBank(sources, paired=False), d.crop, d.batch_size, cfg.seed + 1) if sources else None
    counts = {
        "root": str(root),
        "labeled": len(labeled_pairs),
        "extra_rain": n_extra,
        "unlabeled_folder": n_folder,
        "unlabeled_dropped_labels": len(dropped),
        "val": len(val),
    }
    if len(set(val_groups)) > 1:
        counts["val_extra_rain"] = len(val) - val_groups.count("labeled")
    return TrainData(labeled_sampler, unlabeled_sampler, val, counts, val_groups)
