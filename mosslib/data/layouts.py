"""Paired (rainy, clean) and unlabeled deraining data sets: :func:`open_dataset` detects the layout.

Layouts (``Dataset.layout``) and their splits:

``ddn-sirr``      ``input_val/inputN`` + ``label_val/norainN`` (DDN-SIRR test as distributed):
                  splits ``dense`` (N <= 10) and ``sparse`` (11..20), or ``all`` when some N > 20;
                  ``real`` = ``real_input/`` (unlabeled); ``train`` if a DDN-style
                  ``rainy_image/`` + ``ground_truth/`` sits beside them (or under ``training/``).
``ddn``           ``rainy_image/{ID}_{k}`` + ``ground_truth/{ID}`` (DDN / Rain14000, 14 per clean).
``rain200``       ``rain/X2/norain-Nx2`` + ``norain/norain-N`` (Rain200H/L, JORDER's Rain100).
``rain100``       PReNet's ``rainy/rain-N`` + ``norain-N`` (or both in one folder).
``folder-pairs``  identical names in two folders: ``rain/`` + ``norain/``, ``input/`` + ``target/``,
                  ... (``FOLDER_PAIRS``); the shared Rain100L is one.
``side-by-side``  one image holds both (Rain800: left clean, right rainy; Rain1200/DID-MDN: left
                  rainy); ``order`` says which half is rainy, default from the data set's name,
                  else guessed from high-frequency energy (with a warning).
``unlabeled``     a plain folder of rainy images (D_U): split ``all``.

Every layout except ``ddn-sirr`` may instead sit in split sub-folders (``train/``, ``test/``,
``training/``, ``test_syn/``, ...; ``SPLIT_FOLDERS``) giving splits ``train``/``test``/...;
otherwise its split is ``all``. Pairs are in natural order of their names (2 before 10).
Problems (missing partner, empty file, unknown layout) raise :class:`DataError` naming the
file, or, with ``skip_bad=True``, drop the file with a :class:`DataWarning`.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .imageio import IMAGE_SUFFIXES, ImageError, is_image_file, read_rgb

__all__ = [
    "LAYOUTS", "FOLDER_PAIRS", "SPLIT_FOLDERS", "DataError", "DataWarning", "Pair", "Split", "Dataset",
    "natural_key", "open_dataset", "find_datasets", "split_halves", "high_frequency_energy", "drop_labels",
]

LAYOUTS = ("ddn-sirr", "ddn", "rain200", "rain100", "folder-pairs", "side-by-side", "unlabeled")
LAYOUT_ALIASES = {
    "sirr": "ddn-sirr", "ddn_sirr": "ddn-sirr", "rain1400": "ddn", "rain14000": "ddn", "rain200h": "rain200",
    "rain200l": "rain200", "rain800": "side-by-side",
    "rain1200": "side-by-side", "did-mdn": "side-by-side", "folder": "unlabeled", "pairs": "folder-pairs",
}
# (rainy folder, clean folder) names of the folder-pairs layout, tried in this order (case-insensitive)
FOLDER_PAIRS = (
    ("rain", "norain"), ("rainy", "norain"), ("input", "target"), ("inputs", "targets"), ("rainy", "clean"),
    ("rain", "clean"), ("input", "gt"), ("rainy", "gt"), ("rain", "gt"), ("input", "groundtruth"),
    ("input", "label"), ("rainy_image", "ground_truth"), ("data", "gt"), ("lq", "gt"),
)
# sub-folder name -> split name
SPLIT_FOLDERS = {
    "train": "train", "training": "train", "trainset": "train", "train_set": "train", "test": "test",
    "testing": "test", "testset": "test", "test_set": "test", "test_syn": "test", "val": "val", "valid": "val",
    "validation": "val", "test_nature": "real", "real": "real",
}
# name hints (any path component, lower case) -> which half of a side-by-side image is rainy
SIDE_BY_SIDE_HINTS = (
    (("rain800", "id-cgan", "idcgan", "rain_800"), "right"),
    (("rain1200", "did-mdn", "didmdn", "did_mdn", "rain_heavy", "rain_medium", "rain_light", "train2018new"), "left"),
)
ORDER_VALUES = {"left": "left", "rainy-left": "left", "rainy-clean": "left", "right": "right",
                "rainy-right": "right", "clean-rainy": "right"}


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
        return [message for _, message in _verify(self, decode)]


# ----------------------------------------------------------------------------------------------
# reading folders


def _images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (hidden files ignored), natural order."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def _subdir(folder: Path, name: str) -> Path | None:
    """The sub-folder called ``name``, compared case-insensitively."""
    exact = folder / name
    if exact.is_dir():
        return exact
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


class _Problems:
    """Raise on the first problem, or (skip_bad) collect it as a warning."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip_bad:
            raise DataError(f"{message} (pass skip_bad=True / --skip-bad to skip such files with a warning)")
        self.messages.append(f"skipped: {message}")

    def note(self, message: str) -> None:
        self.messages.append(message)


def _usable(path: Path, problems: _Problems) -> bool:
    if path.stat().st_size == 0:
        problems(f"{path}: empty file (zero bytes)")
        return False
    return True


def _by_stem(files: list[Path]) -> dict[str, Path]:
    return {p.stem: p for p in files}


def _match(rainy_files, clean_index: dict[str, Path], key, rainy_dir: Path, clean_dir: Path, problems,
           half=None) -> list[Pair]:
    """Pairs of rainy files with ``clean_index[key(rainy)]``; unmatched ones are problems."""
    pairs, used = [], set()
    for r in rainy_files:
        k = key(r)
        c = clean_index.get(k) if k is not None else None
        if c is None:
            wanted = "?" if k is None else (k if Path(k).suffix else f"{k}.*")
            problems(f"{r}: no ground truth for it in {clean_dir} (looked for {wanted})")
            continue
        if _usable(r, problems) and _usable(c, problems):
            pairs.append(Pair(r.stem, r, c, half))
            used.add(c)
    extra = sorted({c for c in clean_index.values() if c not in used}, key=lambda c: natural_key(c.name))
    if extra and pairs:
        problems.note(f"{clean_dir}: {len(extra)} clean image(s) without a rainy partner ignored, e.g. {extra[0].name}")
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):  # the same stem with two extensions: use file names
        pairs = [Pair(p.rainy.name, p.rainy, p.clean, p.half) for p in pairs]
    return sorted(pairs, key=lambda p: natural_key(p.name))


def _exact_or_stem(rainy_dir: Path, clean_dir: Path, problems) -> list[Pair]:
    """Pairs of files with the same name in both folders, else the same stem (x.jpg <-> x.png)."""
    clean = _images(clean_dir)
    index = {**_by_stem(clean), **{p.name: p for p in clean}}
    return _match(_images(rainy_dir), index, lambda r: r.name if r.name in index else r.stem,
                  rainy_dir, clean_dir, problems)


# --- detection of one folder (no split sub-folders) ---------------------------------------------

_DDN_RAINY = re.compile(r"^(.+)_(\d+)$")
_X2 = re.compile(r"^(.+?)x\d+$", re.IGNORECASE)


def _ddn_dirs(folder: Path) -> tuple[Path, Path] | None:
    r, c = _subdir(folder, "rainy_image"), _subdir(folder, "ground_truth")
    if r is None or c is None:
        return None
    stems = set(_by_stem(_images(c)))
    for f in _images(r)[:50]:
        m = _DDN_RAINY.match(f.stem)
        if m and m.group(1) in stems and f.stem not in stems:
            return r, c
    return None


def _rain200_dirs(folder: Path) -> tuple[Path, Path] | None:
    for rn in ("rain", "rainy"):
        r = _subdir(folder, rn)
        x2 = _subdir(r, "X2") if r is not None else None
        c = _subdir(folder, "norain")
        if x2 is not None and c is not None:
            return x2, c
    return None


def _rain100_dirs(folder: Path) -> tuple[Path, Path] | None:
    own = _images(folder)
    if not any(p.stem.lower().startswith("norain-") for p in own):
        return None
    rainy = _subdir(folder, "rainy")
    if rainy is not None and any(p.stem.lower().startswith("rain-") for p in _images(rainy)):
        return rainy, folder
    if any(p.stem.lower().startswith("rain-") for p in own):
        return folder, folder
    return None


def _folder_pair_dirs(folder: Path) -> tuple[Path, Path] | None:
    for rn, cn in FOLDER_PAIRS:
        r, c = _subdir(folder, rn), _subdir(folder, cn)
        if r is not None and c is not None and _images(r) and _images(c):
            return r, c
    return None


def _detect(folder: Path) -> str | None:
    """The paired layout of ``folder`` itself, from names only; None if none applies."""
    if _subdir(folder, "input_val") is not None and _subdir(folder, "label_val") is not None:
        return "ddn-sirr"
    if _rain200_dirs(folder):
        return "rain200"
    if _ddn_dirs(folder):
        return "ddn"
    if _rain100_dirs(folder):
        return "rain100"
    if _folder_pair_dirs(folder):
        return "folder-pairs"
    return None


def _build_ddn(folder: Path, problems) -> list[Pair]:
    dirs = _ddn_dirs(folder) or (_subdir(folder, "rainy_image"), _subdir(folder, "ground_truth"))
    if dirs[0] is None or dirs[1] is None:
        raise DataError(f"{folder}: not a DDN layout (looked for rainy_image/ID_k.* + ground_truth/ID.*)")
    r, c = dirs

    def key(p: Path) -> str | None:
        m = _DDN_RAINY.match(p.stem)
        return m.group(1) if m else None

    return _match(_images(r), _by_stem(_images(c)), key, r, c, problems)


def _build_rain200(folder: Path, problems) -> list[Pair]:
    dirs = _rain200_dirs(folder)
    if dirs is None:
        raise DataError(f"{folder}: not a Rain200 layout (looked for rain/X2/NAMEx2.* + norain/NAME.*)")
    r, c = dirs

    def key(p: Path) -> str:
        m = _X2.match(p.stem)
        return m.group(1) if m else p.stem

    return _match(_images(r), _by_stem(_images(c)), key, r, c, problems)


def _build_rain100(folder: Path, problems) -> list[Pair]:
    dirs = _rain100_dirs(folder)
    if dirs is None:
        raise DataError(f"{folder}: not a Rain100 (PReNet) layout (looked for rainy/rain-N.* + norain-N.*)")
    r, c = dirs
    rainy = [p for p in _images(r) if p.stem.lower().startswith("rain-")]
    clean = [p for p in _images(c) if p.stem.lower().startswith("norain-")]
    return _match(rainy, _by_stem(clean), lambda p: "no" + p.stem, r, c, problems)


def _build_folder_pairs(folder: Path, problems) -> list[Pair]:
    dirs = _folder_pair_dirs(folder)
    if dirs is None:
        names = ", ".join(f"{a}/+{b}/" for a, b in FOLDER_PAIRS)
        raise DataError(f"{folder}: no pair of folders with images found (looked for {names})")
    return _exact_or_stem(dirs[0], dirs[1], problems)


def _build_ddn_sirr(folder: Path, problems) -> dict[str, Split]:
    inp, lab = _subdir(folder, "input_val"), _subdir(folder, "label_val")
    pat = re.compile(r"^input(\d+)$", re.IGNORECASE)

    def key(p: Path) -> str | None:
        m = pat.match(p.stem)
        return f"norain{m.group(1)}" if m else None

    clean = {p.stem.lower(): p for p in _images(lab)}
    pairs = _match(_images(inp), clean, key, inp, lab, problems)
    numbers = {p.name: int(pat.match(p.rainy.stem).group(1)) for p in pairs}
    splits: dict[str, Split] = {}
    if pairs and max(numbers.values()) <= 20:
        for name, keep in (("dense", lambda n: n <= 10), ("sparse", lambda n: n > 10)):
            group = [p for p in pairs if keep(numbers[p.name])]
            if group:
                splits[name] = Split(name, group)
    elif pairs:
        problems.note(f"{inp}: N goes beyond 20, so the dense (1-10) / sparse (11-20) split does not apply; "
                      "one split 'all'")
        splits["all"] = Split("all", pairs)
    train_root = _subdir(folder, "training") or folder
    if _ddn_dirs(train_root):
        splits["train"] = Split("train", _build_ddn(train_root, problems))
    real = _subdir(folder, "real_input")
    if real is not None:
        splits["real"] = Split("real", unlabeled=[p for p in _images(real) if _usable(p, problems)])
    return splits


_BUILDERS = {"ddn": _build_ddn, "rain200": _build_rain200, "rain100": _build_rain100,
             "folder-pairs": _build_folder_pairs}


# --- side-by-side ------------------------------------------------------------------------------


def high_frequency_energy(image: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image in [0, 1]: rain streaks raise it."""
    from scipy import ndimage

    grey = image.astype(np.float32).mean(axis=-1) / 255.0
    return float(np.mean(ndimage.laplace(grey) ** 2))


def _halves_similar(image: np.ndarray) -> bool:
    """True when the two halves show the same scene: band-pass correlation of the halves > 0.5."""
    from scipy import ndimage

    w = image.shape[1]
    if w < 16 or w % 2:
        return False
    left, right = image[:, : w // 2], image[:, w // 2:]

    def band(x):
        g = x.astype(np.float32).mean(axis=-1)
        step = max(1, int(round(g.shape[1] / 48)))
        g = ndimage.uniform_filter(g, step)[::step, ::step]
        b = g - ndimage.gaussian_filter(g, 3)
        return (b - b.mean()).ravel()

    a, b = band(left), band(right)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return denom > 0 and float(a @ b) / denom > 0.5


def _looks_side_by_side(files: list[Path]) -> bool:
    sample = files[:: max(1, len(files) // 3)][:3]
    try:
        return bool(sample) and all(_halves_similar(read_rgb(p)) for p in sample)
    except ImageError:
        return False


def _hinted_order(folder: Path) -> str | None:
    parts = [p.lower() for p in folder.resolve().parts]
    for names, half in SIDE_BY_SIDE_HINTS:
        if any(n in part for part in parts for n in names):
            return half
    return None


def _energy_votes(files: list[Path], half: str, limit: int = 6) -> tuple[list[Path], int]:
    """Files (of a sample) whose "clean" half has more high-frequency energy than the "rainy" one."""
    sample = files[:: max(1, len(files) // limit)][:limit]
    wrong = []
    for p in sample:
        try:
            rainy, clean = split_halves(read_rgb(p), half, p)
        except ImageError:
            continue
        if high_frequency_energy(clean) > high_frequency_energy(rainy):
            wrong.append(p)
    return wrong, len(sample)


def _build_side_by_side(folder: Path, problems, order: str | None) -> list[Pair]:
    files = [p for p in _images(folder) if _usable(p, problems)]
    if not files:
        raise DataError(f"{folder}: no images found for the side-by-side layout")
    if order is None:
        order = _hinted_order(folder)
        if order is None:
            wrong, n = _energy_votes(files, "left")
            order = "right" if 2 * len(wrong) > n else "left"
            problems.note(
                f"{folder}: side-by-side order not known from the data set's name; guessed rainy half = {order} "
                f"from high-frequency energy ({n - len(wrong) if order == 'left' else len(wrong)}/{n} sampled images "
                f"agree); pass order='rainy-left' or 'rainy-right' to set it"
            )
    wrong, n = _energy_votes(files, order)
    if wrong:
        problems.note(
            f"{folder}: in {len(wrong)} of {n} sampled side-by-side images the 'clean' half has more high-frequency "
            f"energy than the 'rainy' half (rainy = {order}); is the order right? e.g. {wrong[0]}"
        )
    return [Pair(p.stem, p, p, order) for p in files]


# --- one folder -> splits ----------------------------------------------------------------------


def _open_flat(folder: Path, layout: str | None, problems, order: str | None) -> tuple[str, Split] | None:
    """(layout, split) of one folder read without split sub-folders; None if it holds nothing."""
    found = layout or _detect(folder)
    if found in _BUILDERS:
        return found, Split("all", _BUILDERS[found](folder, problems))
    if found == "ddn-sirr":
        raise DataError(f"{folder}: a DDN-SIRR folder (input_val/ + label_val/) inside a split folder; "
                        "open it directly")
    files = _images(folder)
    if found is None and not files:
        return None
    if found == "side-by-side" or (found is None and (order is not None or _looks_side_by_side(files))):
        return "side-by-side", Split("all", _build_side_by_side(folder, problems, order))
    if not files:
        raise DataError(f"{folder}: no image files here ({', '.join(IMAGE_SUFFIXES)})")
    return "unlabeled", Split("all", unlabeled=[p for p in files if _usable(p, problems)])


def _split_dirs(folder: Path) -> dict[str, Path]:
    rank = {"train": 0, "val": 1, "test": 2, "real": 3}
    dirs = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.lower() in SPLIT_FOLDERS),
                  key=lambda d: (rank[SPLIT_FOLDERS[d.name.lower()]], natural_key(d.name)))
    names = [SPLIT_FOLDERS[d.name.lower()] for d in dirs]
    if len(set(names)) != len(names):  # e.g. test/ and testing/: keep the folders' own names
        return {d.name: d for d in dirs}
    return dict(zip(names, dirs))


def _open(folder: Path, layout: str | None, problems, order: str | None) -> Dataset:
    detected = _detect(folder)
    if layout == "ddn-sirr" or (layout is None and detected == "ddn-sirr"):
        if detected != "ddn-sirr":
            raise DataError(f"{folder}: not a DDN-SIRR test folder "
                            "(looked for input_val/inputN.* + label_val/norainN.*)")
        return Dataset(folder, "ddn-sirr", _build_ddn_sirr(folder, problems))
    if detected is not None and layout in (None, detected):
        return Dataset(folder, detected, {"all": Split("all", _BUILDERS[detected](folder, problems))})
    sub = _split_dirs(folder)
    if sub:
        splits, layouts = {}, set()
        for name, d in sub.items():
            # real-world folders (Rain800's test_nature/) hold rainy images only, whatever the layout
            forced = "unlabeled" if name == "real" else layout
            got = None if forced == "unlabeled" and not _images(d) else _open_flat(d, forced, problems, order)
            if got is None:
                problems.note(f"{d}: no images, split {name!r} left out")
                continue
            layouts.add(got[0])
            splits[name] = Split(name, got[1].pairs, got[1].unlabeled)
        paired = layouts - {"unlabeled"}
        if len(paired) > 1:
            raise DataError(f"{folder}: split folders have different layouts {sorted(paired)}; open them one by one")
        if splits:
            return Dataset(folder, paired.pop() if paired else "unlabeled", splits)
    if layout is not None or _images(folder):
        found, split = _open_flat(folder, layout, problems, order)
        return Dataset(folder, found, {"all": split})
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    if not entries:
        raise DataError(f"{folder}: empty folder")
    children = [d for d in sorted(entries, key=lambda d: natural_key(d.name)) if d.is_dir()]
    inner = [d.name for d in children if _detect(d) or _split_dirs(d) or _images(d)]
    if inner:
        raise DataError(f"{folder}: holds several data sets ({', '.join(inner)}); open one of them "
                        f"(`python -m mosslib datasets {folder}` lists them)")
    raise DataError(
        f"{folder}: unknown layout - no image files and none of: input_val/+label_val/ (ddn-sirr), "
        f"rainy_image/+ground_truth/ (ddn), rain/X2/+norain/ (rain200), rainy/+norain-N (rain100), "
        f"rain/+norain/ or input/+target/ (folder-pairs), split folders train/, test/"
    )


def open_dataset(root, layout: str | None = None, order: str | None = None, skip_bad: bool = False,
                 verify: bool = False) -> Dataset:
    """Detect the layout of ``root`` and list its pairs and unlabeled images (module docstring).

    ``layout`` forces one of :data:`LAYOUTS` (or an alias such as "rain800"); ``order`` is the
    rainy half of side-by-side images ("rainy-left"/"rainy-right", also "left"/"right");
    ``skip_bad`` turns problems into warnings that drop the file; ``verify`` also reads every
    image header (unreadable files, pairs whose sizes differ).
    """
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: is a file; give the folder of a data set")
    if layout is not None:
        key = layout.lower()
        if key in ("rain800", "rain1200", "did-mdn") and order is None:
            order = "right" if key == "rain800" else "left"
        layout = LAYOUT_ALIASES.get(key, key)
        if layout not in LAYOUTS:
            raise DataError(f"unknown layout {layout!r}; use one of {list(LAYOUTS)}")
    if order is not None:
        if order.lower() not in ORDER_VALUES:
            raise DataError(f"unknown side-by-side order {order!r}; use 'rainy-left' or 'rainy-right'")
        order = ORDER_VALUES[order.lower()]
    problems = _Problems(skip_bad)
    ds = _open(root, layout, problems, order)
    if verify:
        bad = _verify(ds, decode=False)
        for _, message in bad:
            problems(message)
        dropped = set().union(*(paths for paths, _ in bad)) if bad else set()
        for s in ds.splits.values():
            s.pairs = [p for p in s.pairs if p.rainy not in dropped and p.clean not in dropped]
            s.unlabeled = [p for p in s.unlabeled if p not in dropped]
    if not any(len(s) for s in ds.splits.values()):
        raise DataError(f"{root}: recognised as {ds.layout} but holds no usable images")
    ds.warnings = problems.messages
    for message in ds.warnings:
        warnings.warn(message, DataWarning, stacklevel=2)
    return ds


def find_datasets(root, **options) -> dict[str, Dataset]:
    """``{".": dataset}`` if ``root`` is a data set, else ``{sub-folder name: dataset}`` for each
    sub-folder that is one (e.g. ``../shared/data``); ``options`` go to :func:`open_dataset`."""
    root = Path(root).expanduser()
    try:
        return {".": open_dataset(root, **options)}
    except DataError as exc:
        if not root.is_dir() or "holds several data sets" not in str(exc):
            raise
    found = {}
    for child in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: natural_key(d.name)):
        try:
            found[child.name] = open_dataset(child, **options)
        except DataError:
            continue
    if not found:
        open_dataset(root, **options)  # re-raise the informative error
    return found


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


def _verify(ds: Dataset, decode: bool) -> list[tuple[set[Path], str]]:
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
