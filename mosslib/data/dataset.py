"""A data set's parts: :class: (a rainy image and its label, if any), :class: and
:class: (named splits of one layout), the errors, and the checks of image headers."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .imageio import ImageError, read_rgb


class DataError(ValueError):
    """A data set that cannot be used as asked; the message names the path and what was expected."""


class DataWarning(UserWarning):
    """A problem that was skipped (``skip_bad=True``) or a doubt about the data (side-by-side order)."""


_DIGITS = re.compile(r"(\d+)")


def natural_key(s) -> tuple:
    """Sort key with numbers compared as numbers: ``input2`` < ``input10``; total and stable."""
    s = str(s)
    parts = []
    for i, piece in enumerate(_DIGITS.split(s)):
        if i % 2:
            parts.append((0, int(piece), piece))
        elif piece:
            parts.append((1, 0, piece.lower()))
    return (tuple(parts), s)


def split_halves(image: np.ndarray, rainy_half: str, path: Path | str = "<image>") -> tuple[np.ndarray, np.ndarray]:
    """(rainy, clean) halves of a side-by-side (H, 2W, 3) image; an odd middle column is dropped."""
    if rainy_half not in ("left", "right"):
        raise ValueError(f"rainy_half must be 'left' or 'right', got {rainy_half!r}")
    w = image.shape[1]
    if w < 2:
        raise ImageError(f"{path}: {w} px wide, too narrow to hold two halves side by side")
    k = w // 2
    left, right = image[:, :k], image[:, w - k:]
    return (left, right) if rainy_half == "left" else (right, left)


@dataclass(frozen=True)
class Pair:
    """One rainy image and its ground truth (``clean`` is None when the label was dropped).

    ``half``: for side-by-side images, which half ("left"/"right") is rainy; ``rainy`` and
    ``clean`` then name the same file.
    """

    name: str
    rainy: Path
    clean: Path | None
    half: str | None = None

    @property
    def labeled(self) -> bool:
        return self.clean is not None

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(rainy, clean) as uint8 (H, W, 3); ImageError names both files if their sizes differ."""
        if self.clean is None:
            raise ImageError(f"{self.rainy}: pair {self.name!r} has no ground truth (label dropped)")
        if self.half is not None:
            return split_halves(read_rgb(self.rainy), self.half, self.rainy)
        rainy, clean = read_rgb(self.rainy), read_rgb(self.clean)
        if rainy.shape != clean.shape:
            raise ImageError(
                f"pair {self.name!r}: sizes differ - rainy {self.rainy} is {rainy.shape[1]}x{rainy.shape[0]}, "
                f"clean {self.clean} is {clean.shape[1]}x{clean.shape[0]}"
            )
        return rainy, clean

    def load_rainy(self) -> np.ndarray:
        """The rainy image alone, uint8 (H, W, 3) (works with or without a label)."""
        img = read_rgb(self.rainy)
        return split_halves(img, self.half, self.rainy)[0] if self.half is not None else img


def drop_labels(pairs) -> list[Pair]:
    """The same rainy images with ``clean=None`` (D_U made from a paired set)."""
    return [Pair(p.name, p.rainy, None, p.half) for p in pairs]


@dataclass
class Split:
    """The pairs and unlabeled images of one split, in natural order."""

    name: str
    pairs: list[Pair] = field(default_factory=list)
    unlabeled: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs) + len(self.unlabeled)


@dataclass
class Dataset:
    """A detected data set: its layout, its splits and what was noticed while reading it."""

    root: Path
    layout: str
    splits: dict[str, Split]
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """``{"root", "layout", "splits": {NAME: {"pairs": N, "unlabeled": M}}}`` (the CLI's --json)."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "splits": {k: {"pairs": len(s.pairs), "unlabeled": len(s.unlabeled)} for k, s in self.splits.items()},
        }

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(f"{self.root}: no split {name!r} in this {self.layout} data set; "
                            f"it has {sorted(self.splits)}")
        return self.splits[name]

    def paired_splits(self) -> list[str]:
        return [k for k, s in self.splits.items() if s.pairs]

    def test_groups(self) -> dict[str, list[Pair]]:
        """Evaluation groups: ddn-sirr -> {"dense", "sparse"} (or {"all"}); else {"all": test pairs}."""
        if self.layout == "ddn-sirr":
            groups = {k: list(self.splits[k].pairs) for k in ("dense", "sparse", "all") if k in self.splits}
            groups = {k: v for k, v in groups.items() if v}
            if groups:
                return groups
        if "test" in self.splits and self.splits["test"].pairs:
            return {"all": list(self.splits["test"].pairs)}
        paired = self.paired_splits()
        if len(paired) == 1:
            return {"all": list(self.splits[paired[0]].pairs)}
        if not paired:
            raise DataError(f"{self.root}: no pairs with ground truth here ({self.layout}), nothing to evaluate on")
        raise DataError(f"{self.root}: no 'test' split and several paired splits {paired}; pick one with .split(name)")

    def verify(self, decode: bool = False) -> list[str]:
        """Problems found by reading every image header (``decode=True``: full decode), one line each."""
        return [message for _, message in verify_files(self, decode)]


# --- header checks -----------------------------------------------------------------------------


def _check_image(path: Path, decode: bool) -> tuple[tuple[int, int] | None, str | None]:
    """((width, height), None) or (None, message naming the file)."""
    try:
        if decode:
            arr = read_rgb(path)
            return (arr.shape[1], arr.shape[0]), None
        with Image.open(path) as im:
            return im.size, None
    except (ImageError, OSError, ValueError, SyntaxError) as exc:
        msg = str(exc)
        return None, msg if str(path) in msg else f"{path}: unreadable image ({msg})"


def _check_pair(p: Pair, decode: bool) -> str | None:
    size, problem = _check_image(p.rainy, decode)
    if problem or p.clean is None or p.half is not None:
        return problem
    csize, problem = _check_image(p.clean, decode)
    if problem:
        return problem
    if csize != size:
        return (f"pair {p.name!r}: sizes differ - rainy {p.rainy} is {size[0]}x{size[1]}, "
                f"clean {p.clean} is {csize[0]}x{csize[1]}")
    return None


def verify_files(ds: Dataset, decode: bool) -> list[tuple[set[Path], str]]:
    found = []
    for split in ds.splits.values():
        for p in split.pairs:
            problem = _check_pair(p, decode)
            if problem:
                found.append(({p.rainy} | ({p.clean} if p.clean else set()), problem))
        for path in split.unlabeled:
            problem = _check_image(path, decode)[1]
            if problem:
                found.append(({path}, problem))
    return found
