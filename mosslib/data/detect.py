"""Layout detection: which of the supported layouts a folder holds, and the pairs each layout's
builder finds in it (side-by-side images included)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .dataset import DataError, natural_key, split_halves, Pair, Split
from .imageio import ImageError, is_image_file, read_rgb


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


# ----------------------------------------------------------------------------------------------
# reading folders


def image_files(folder: Path) -> list[Path]:
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


class Problems:
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


def usable_file(path: Path, problems: Problems) -> bool:
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
        if usable_file(r, problems) and usable_file(c, problems):
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
    clean = image_files(clean_dir)
    index = {**_by_stem(clean), **{p.name: p for p in clean}}
    return _match(image_files(rainy_dir), index, lambda r: r.name if r.name in index else r.stem,
                  rainy_dir, clean_dir, problems)


# --- detection of one folder (no split sub-folders) ---------------------------------------------

_DDN_RAINY = re.compile(r"^(.+)_(\d+)$")
_X2 = re.compile(r"^(.+?)x\d+$", re.IGNORECASE)


def _ddn_dirs(folder: Path) -> tuple[Path, Path] | None:
    r, c = _subdir(folder, "rainy_image"), _subdir(folder, "ground_truth")
    if r is None or c is None:
        return None
    stems = set(_by_stem(image_files(c)))
    for f in image_files(r)[:50]:
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
    own = image_files(folder)
    if not any(p.stem.lower().startswith("norain-") for p in own):
        return None
    rainy = _subdir(folder, "rainy")
    if rainy is not None and any(p.stem.lower().startswith("rain-") for p in image_files(rainy)):
        return rainy, folder
    if any(p.stem.lower().startswith("rain-") for p in own):
        return folder, folder
    return None


def _folder_pair_dirs(folder: Path) -> tuple[Path, Path] | None:
    for rn, cn in FOLDER_PAIRS:
        r, c = _subdir(folder, rn), _subdir(folder, cn)
        if r is not None and c is not None and image_files(r) and image_files(c):
            return r, c
    return None


def detect_layout(folder: Path) -> str | None:
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

    return _match(image_files(r), _by_stem(image_files(c)), key, r, c, problems)


def _build_rain200(folder: Path, problems) -> list[Pair]:
    dirs = _rain200_dirs(folder)
    if dirs is None:
        raise DataError(f"{folder}: not a Rain200 layout (looked for rain/X2/NAMEx2.* + norain/NAME.*)")
    r, c = dirs

    def key(p: Path) -> str:
        m = _X2.match(p.stem)
        return m.group(1) if m else p.stem

    return _match(image_files(r), _by_stem(image_files(c)), key, r, c, problems)


def _build_rain100(folder: Path, problems) -> list[Pair]:
    dirs = _rain100_dirs(folder)
    if dirs is None:
        raise DataError(f"{folder}: not a Rain100 (PReNet) layout (looked for rainy/rain-N.* + norain-N.*)")
    r, c = dirs
    rainy = [p for p in image_files(r) if p.stem.lower().startswith("rain-")]
    clean = [p for p in image_files(c) if p.stem.lower().startswith("norain-")]
    return _match(rainy, _by_stem(clean), lambda p: "no" + p.stem, r, c, problems)


def _build_folder_pairs(folder: Path, problems) -> list[Pair]:
    dirs = _folder_pair_dirs(folder)
    if dirs is None:
        names = ", ".join(f"{a}/+{b}/" for a, b in FOLDER_PAIRS)
        raise DataError(f"{folder}: no pair of folders with images found (looked for {names})")
    return _exact_or_stem(dirs[0], dirs[1], problems)


def build_ddn_sirr(folder: Path, problems) -> dict[str, Split]:
    inp, lab = _subdir(folder, "input_val"), _subdir(folder, "label_val")
    pat = re.compile(r"^input(\d+)$", re.IGNORECASE)

    def key(p: Path) -> str | None:
        m = pat.match(p.stem)
        return f"norain{m.group(1)}" if m else None

    clean = {p.stem.lower(): p for p in image_files(lab)}
    pairs = _match(image_files(inp), clean, key, inp, lab, problems)
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
        splits["real"] = Split("real", unlabeled=[p for p in image_files(real) if usable_file(p, problems)])
    return splits


BUILDERS = {"ddn": _build_ddn, "rain200": _build_rain200, "rain100": _build_rain100,
             "folder-pairs": _build_folder_pairs}


# --- side-by-side ------------------------------------------------------------------------------


def high_frequency_energy(image: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image in [0, 1]: rain streaks raise it."""
    grey = image.astype(np.float32).mean(axis=-1) / 255.0
    return float(np.mean(ndimage.laplace(grey) ** 2))


def _halves_similar(image: np.ndarray) -> bool:
    """True when the two halves show the same scene: band-pass correlation of the halves > 0.5."""
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


def looks_side_by_side(files: list[Path]) -> bool:
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


def build_side_by_side(folder: Path, problems, order: str | None) -> list[Pair]:
    files = [p for p in image_files(folder) if usable_file(p, problems)]
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
