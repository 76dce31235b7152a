"""Training samples: seeded splits, an in-memory image bank and stateless crop samplers.

* :func:`validation_split` carves a held-out validation set from training pairs (model selection
  never looks at the test set); :func:`limited_labels` splits a paired training set into D_L and
  D_U for the limited-label experiments (paper 4.4), nested across fractions.
  Both rank items by a hash of ``(seed, name)``, so a split does not depend on the order of the
  list given, and adding items to a data set does not reshuffle the others.
* :class:`PairSampler` / :class:`ImageSampler`: ``batch(step)`` is a deterministic function of
  ``(seed, step)``; each epoch visits every image once (a seeded permutation per epoch), with a
  random crop (the same window in rainy and clean) and a random horizontal flip. Images smaller
  than the crop are reflect-padded (``small="pad"``, with a warning) or refused (``"error"``).
* :class:`Prefetcher` makes the next batches on a thread while a GPU trains (results unchanged).
* Tensors are float32 in [-1, 1] (the network's range, :mod:`mosslib.data.images`).
"""
from __future__ import annotations

import copy
import hashlib
import math
import queue
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from .layouts import DataError, DataWarning, Pair
from .images import batch_of, to_tensor, to_uint8_image  # noqa: F401 (re-exported: the samplers' conventions)
from .imageio import ImageError, read_rgb

__all__ = [
    "validation_split", "limited_labels", "LABEL_FRACTIONS", "ImageBank", "PairSampler", "ImageSampler",
    "to_tensor", "to_uint8_image", "Prefetcher",
]

LABEL_FRACTIONS = (0.1, 0.2, 0.4, 0.6, 1.0)  # the D_L percentages of the paper's Tables 2 and 3


def _item_name(item) -> str:
    if isinstance(item, Pair):
        return f"{item.name}\0{item.rainy.name}"
    return Path(item).name if isinstance(item, (str, Path)) else str(item)


def _ranked(items: Sequence, seed: int, purpose: str) -> list[int]:
    """Indices of ``items`` in a seeded pseudo-random order that depends only on their names."""
    def h(i: int) -> bytes:
        return hashlib.sha256(f"{purpose}\0{seed}\0{_item_name(items[i])}".encode()).digest()

    return sorted(range(len(items)), key=lambda i: (h(i), i))


def _count(fraction: float, n: int) -> int:
    return int(math.floor(fraction * n + 0.5))


def validation_split(pairs, fraction: float, seed: int) -> tuple[list, list]:
    """(train, val): ``round(fraction * n)`` items held out (at least 1 when fraction > 0 and n > 1,
    never all); both lists keep the input order."""
    items = list(pairs)
    n = len(items)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must lie in [0, 1), got {fraction}")
    if fraction == 0 or n < 2:
        return items, []
    k = min(n - 1, max(1, _count(fraction, n)))
    val = set(_ranked(items, seed, "validation")[:k])
    return [p for i, p in enumerate(items) if i not in val], [p for i, p in enumerate(items) if i in val]


def limited_labels(pairs, fraction: float, seed: int) -> tuple[list, list]:
    """(D_L, D_U): ``round(fraction * n)`` (at least 1) pairs keep their labels, the rest form D_U
    (the caller drops their labels, e.g. :func:`mosslib.data.layouts.drop_labels`). For one seed, D_L of
    a smaller fraction is a subset of D_L of a larger one."""
    items = list(pairs)
    n = len(items)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labeled fraction must lie in (0, 1], got {fraction}")
    if n == 0:
        raise DataError("limited_labels: no pairs to split")
    k = min(n, max(1, _count(fraction, n)))
    keep = set(_ranked(items, seed, "labels")[:k])
    return [p for i, p in enumerate(items) if i in keep], [p for i, p in enumerate(items) if i not in keep]


# ----------------------------------------------------------------------------------------------


class ImageBank:
    """Images loaded once into memory as uint8 (H, W, 3) arrays.

    ``items``: :class:`Pair` objects or image paths. ``paired`` (default: every item is a Pair
    with ground truth) keeps ``targets`` beside ``inputs``; otherwise only the rainy images are
    kept. ``skip_bad``: unreadable files and size-mismatched pairs are dropped with a
    :class:`DataWarning` (listed in ``skipped``) instead of raising :class:`ImageError`.
    """

    def __init__(self, items, *, paired: bool | None = None, skip_bad: bool = False):
        items = list(items)
        if not items:
            raise DataError("ImageBank: no images given (empty list)")
        if paired is None:
            paired = all(isinstance(it, Pair) and it.clean is not None for it in items)
        self.paired = bool(paired)
        self.inputs: list[np.ndarray] = []
        self.targets: list[np.ndarray] | None = [] if self.paired else None
        self.names: list[str] = []
        self.skipped: list[str] = []
        for it in items:
            try:
                x, y = self._load(it)
            except ImageError as exc:
                if not skip_bad:
                    raise ImageError(f"{exc} (pass skip_bad=True to skip bad files with a warning)") from exc
                self.skipped.append(str(exc))
                warnings.warn(f"skipped: {exc}", DataWarning, stacklevel=2)
                continue
            self.inputs.append(x)
            if self.paired:
                self.targets.append(y)
            self.names.append(it.name if isinstance(it, Pair) else Path(it).stem)
        if not self.inputs:
            raise DataError(f"ImageBank: all {len(items)} images were unreadable, e.g. {self.skipped[0]}")

    def _load(self, item) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(item, Pair):
            if self.paired:
                if item.clean is None:
                    raise DataError(f"{item.rainy}: pair {item.name!r} has no ground truth; use paired=False")
                return item.load()
            return item.load_rainy(), None
        if self.paired:
            raise DataError(f"{item}: a path has no ground truth; give Pair objects for a paired bank")
        return read_rgb(item), None

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.inputs) + sum(a.nbytes for a in self.targets or [])


# ----------------------------------------------------------------------------------------------


def _pad_to(img: np.ndarray, crop: int) -> np.ndarray:
    """Reflect-pad (symmetrically) so that both sides are at least ``crop``."""
    h, w = img.shape[:2]
    ph, pw = max(0, crop - h), max(0, crop - w)
    if not ph and not pw:
        return img
    if h == 1 or w == 1:  # reflection needs two pixels; repeat the edge instead
        return np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="edge")
    return np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="reflect")


class _CropSampler:
    """Shared machinery: epoch permutations, crop windows, flips, small-image handling."""

    def __init__(self, bank: ImageBank, crop: int, batch_size: int, seed: int, flip: bool, small: str):
        if int(crop) != crop or crop < 1:
            raise ValueError(f"crop must be a positive integer, got {crop}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if small not in ("pad", "error"):
            raise ValueError(f"small must be 'pad' or 'error', got {small!r}")
        self.bank, self.crop, self.batch_size = bank, int(crop), int(batch_size)
        self.seed, self.flip, self.small = int(seed), bool(flip), small
        too_small = [i for i, a in enumerate(bank.inputs) if a.shape[0] < crop or a.shape[1] < crop]
        if too_small and small == "error":
            i = too_small[0]
            h, w = bank.inputs[i].shape[:2]
            raise DataError(f"{len(too_small)} image(s) smaller than the {crop}x{crop} crop, e.g. {bank.names[i]!r} "
                            f"({w}x{h}); use a smaller crop or small='pad'")
        if too_small:
            warnings.warn(f"{len(too_small)} of {len(bank)} images are smaller than the {crop}px crop and are "
                          f"reflect-padded, e.g. {bank.names[too_small[0]]!r}", DataWarning, stacklevel=3)
        self._inputs = [_pad_to(a, crop) for a in bank.inputs]
        self._targets = [_pad_to(a, crop) for a in bank.targets] if bank.targets is not None else None
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.bank)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch, 7]).permutation(len(self.bank))
        return self._perms[epoch]

    def indices(self, step: int) -> np.ndarray:
        """Bank indices of batch ``step``: sample g = step * B + b is position g % n of epoch g // n."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        n = len(self.bank)
        g = step * self.batch_size + np.arange(self.batch_size)
        return np.array([self._perm(int(e))[int(p)] for e, p in zip(g // n, g % n)])

    def _windows(self, step: int, idx: np.ndarray) -> list[tuple[int, int, bool]]:
        rng = np.random.default_rng([self.seed, step, 11])
        out = []
        for i in idx:
            h, w = self._inputs[i].shape[:2]
            top = int(rng.integers(0, h - self.crop + 1))
            left = int(rng.integers(0, w - self.crop + 1))
            flip = bool(rng.random() < 0.5)
            out.append((top, left, flip and self.flip))
        return out

    def _cut(self, img: np.ndarray, top: int, left: int, flip: bool) -> np.ndarray:
        patch = img[top : top + self.crop, left : left + self.crop]
        return patch[:, ::-1] if flip else patch

    @staticmethod
    def _stack(patches: list[np.ndarray]) -> torch.Tensor:
        return batch_of(patches)

    def with_batch_size(self, batch_size: int) -> "_CropSampler":
        """The same sampler (bank, crop, seed, flips) drawing ``batch_size`` crops per batch; the
        padded images are shared, not copied."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        other = copy.copy(self)
        other.batch_size, other._perms = int(batch_size), {}
        return other

    def stream(self, start: int = 0) -> Iterator:
        """Infinite iterator of ``batch(start)``, ``batch(start + 1)``, ..."""
        step = start
        while True:
            yield self.batch(step)
            step += 1

    def __iter__(self):
        return self.stream(0)

    def batch(self, step: int):  # pragma: no cover - defined by subclasses
        raise NotImplementedError


def _bank_of(source, paired: bool, skip_bad: bool) -> ImageBank:
    if isinstance(source, ImageBank):
        if paired and not source.paired:
            raise DataError("PairSampler needs a paired ImageBank (built from pairs with ground truth)")
        return source
    return ImageBank(source, paired=paired, skip_bad=skip_bad)


class PairSampler(_CropSampler):
    """Batches of aligned (rainy, clean) crops from an :class:`ImageBank` or a list of pairs."""

    def __init__(self, bank_or_pairs, crop: int, batch_size: int, seed: int, flip: bool = True,
                 small: str = "pad", skip_bad: bool = False):
        super().__init__(_bank_of(bank_or_pairs, True, skip_bad), crop, batch_size, seed, flip, small)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) float32 (B, 3, crop, crop) in [-1, 1], a function of (seed, step) only."""
        idx = self.indices(step)
        xs, ys = [], []
        for i, (top, left, flip) in zip(idx, self._windows(step, idx)):
            xs.append(self._cut(self._inputs[i], top, left, flip))
            ys.append(self._cut(self._targets[i], top, left, flip))
        return self._stack(xs), self._stack(ys)


class ImageSampler(_CropSampler):
    """Batches of crops of unlabeled images (an ImageBank, image paths, or pairs: rainy only)."""

    def __init__(self, bank_or_items, crop: int, batch_size: int, seed: int, flip: bool = True,
                 small: str = "pad", skip_bad: bool = False):
        super().__init__(_bank_of(bank_or_items, False, skip_bad), crop, batch_size, seed, flip, small)

    def batch(self, step: int) -> torch.Tensor:
        """x float32 (B, 3, crop, crop) in [-1, 1], a function of (seed, step) only."""
        idx = self.indices(step)
        return self._stack([self._cut(self._inputs[i], *w) for i, w in zip(idx, self._windows(step, idx))])


class Prefetcher:
    """Makes ``make(step)`` for ``start, start + 1, ...`` on a background thread, ``depth`` ahead.

    Batches are pure functions of the step, so prefetching changes no result; it lets the
    CPU cut crops while a GPU runs the previous step. ``get(step)`` must be called in order;
    an exception raised by ``make`` is re-raised there. ``close()`` stops the thread.
    """

    def __init__(self, make, start: int, depth: int = 3):
        self._make, self._next = make, int(start)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(int(start),), name="mosslib-prefetch", daemon=True)
        self._thread.start()

    def _run(self, step: int) -> None:
        while not self._stop.is_set():
            try:
                item = (step, self._make(step), None)
            except BaseException as exc:  # handed to the consumer, which raises it
                item = (step, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[2] is not None:
                return
            step += 1

    def get(self, step: int):
        if step != self._next:
            raise ValueError(f"Prefetcher.get({step}): batches are made in order, expected step {self._next}")
        got, value, exc = self._queue.get()
        assert got == step, (got, step)  # the thread makes steps in order from start
        if exc is not None:
            raise exc
        self._next += 1
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
