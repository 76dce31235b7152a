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
import warnings
from pathlib import Path

from .dataset import (DataError, DataWarning, natural_key, split_halves, Pair, drop_labels, Split, Dataset, verify_files)  # noqa: F401 (the public names are re-exported: this is the data sets' entry point)
from .detect import (image_files, Problems, usable_file, detect_layout, build_ddn_sirr, high_frequency_energy, looks_side_by_side, build_side_by_side, LAYOUTS, LAYOUT_ALIASES, FOLDER_PAIRS, SPLIT_FOLDERS, ORDER_VALUES, BUILDERS)  # noqa: F401 (the public names are re-exported: this is the data sets' entry point)
from .imageio import IMAGE_SUFFIXES

__all__ = [
    "LAYOUTS", "FOLDER_PAIRS", "SPLIT_FOLDERS", "DataError", "DataWarning", "Pair", "Split", "Dataset",
    "natural_key", "open_dataset", "find_datasets", "split_halves", "high_frequency_energy", "drop_labels",
]

# --- one folder -> splits ----------------------------------------------------------------------


def _open_flat(folder: Path, layout: str | None, problems, order: str | None) -> tuple[str, Split] | None:
    """(layout, split) of one folder read without split sub-folders; None if it holds nothing."""
    found = layout or detect_layout(folder)
    if found in BUILDERS:
        return found, Split("all", BUILDERS[found](folder, problems))
    if found == "ddn-sirr":
        raise DataError(f"{folder}: a DDN-SIRR folder (input_val/ + label_val/) inside a split folder; "
                        "open it directly")
    files = image_files(folder)
    if found is None and not files:
        return None
    if found == "side-by-side" or (found is None and (order is not None or looks_side_by_side(files))):
        return "side-by-side", Split("all", build_side_by_side(folder, problems, order))
    if not files:
        raise DataError(f"{folder}: no image files here ({', '.join(IMAGE_SUFFIXES)})")
    return "unlabeled", Split("all", unlabeled=[p for p in files if usable_file(p, problems)])


def _split_dirs(folder: Path) -> dict[str, Path]:
    rank = {"train": 0, "val": 1, "test": 2, "real": 3}
    dirs = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.lower() in SPLIT_FOLDERS),
                  key=lambda d: (rank[SPLIT_FOLDERS[d.name.lower()]], natural_key(d.name)))
    names = [SPLIT_FOLDERS[d.name.lower()] for d in dirs]
    if len(set(names)) != len(names):  # e.g. test/ and testing/: keep the folders' own names
        return {d.name: d for d in dirs}
    return dict(zip(names, dirs))


def _open(folder: Path, layout: str | None, problems, order: str | None) -> Dataset:
    detected = detect_layout(folder)
    if layout == "ddn-sirr" or (layout is None and detected == "ddn-sirr"):
        if detected != "ddn-sirr":
            raise DataError(f"{folder}: not a DDN-SIRR test folder "
                            "(looked for input_val/inputN.* + label_val/norainN.*)")
        return Dataset(folder, "ddn-sirr", build_ddn_sirr(folder, problems))
    if detected is not None and layout in (None, detected):
        return Dataset(folder, detected, {"all": Split("all", BUILDERS[detected](folder, problems))})
    sub = _split_dirs(folder)
    if sub:
        splits, layouts = {}, set()
        for name, d in sub.items():
            # real-world folders (Rain800's test_nature/) hold rainy images only, whatever the layout
            forced = "unlabeled" if name == "real" else layout
            got = None if forced == "unlabeled" and not image_files(d) else _open_flat(d, forced, problems, order)
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
    if layout is not None or image_files(folder):
        found, split = _open_flat(folder, layout, problems, order)
        return Dataset(folder, found, {"all": split})
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")]
    if not entries:
        raise DataError(f"{folder}: empty folder")
    children = [d for d in sorted(entries, key=lambda d: natural_key(d.name)) if d.is_dir()]
    inner = [d.name for d in children if detect_layout(d) or _split_dirs(d) or image_files(d)]
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
    problems = Problems(skip_bad)
    ds = _open(root, layout, problems, order)
    if verify:
        bad = verify_files(ds, decode=False)
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

