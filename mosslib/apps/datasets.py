"""``python -m mosslib datasets PATH [--json]``: the detected layout, splits and counts of a data set.

PATH may also be ``embedded`` (or ``embedded:tiny``): the embedded default data set, built on
first use. A folder holding several data sets (e.g. ``../shared/data`` or the embedded root) is
listed one data set per sub-folder; with ``--json`` that is ``{"root": ..., "datasets": {NAME:
object}}``, otherwise one object ``{"root", "layout", "splits": {NAME: {"pairs", "unlabeled"}}}``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from ..data.layouts import LAYOUT_ALIASES, LAYOUTS, DataError, DataWarning, Dataset, find_datasets
from ..data.embedded import ensure

__all__ = ["add_arguments", "run"]

_DESCRIPTION = {
    "ddn-sirr": "DDN-SIRR test: input_val/inputN + label_val/norainN (dense N<=10, sparse 11-20), real_input/",
    "ddn": "DDN / Rain14000: rainy_image/ID_k + ground_truth/ID",
    "rain200": "Rain200: rain/X2/NAMEx2 + norain/NAME",
    "rain100": "Rain100 (PReNet): rainy/rain-N + norain-N",
    "folder-pairs": "two folders with identical file names (rain/ + norain/, input/ + target/, ...)",
    "side-by-side": "rainy and clean halves in one image",
    "unlabeled": "a folder of rainy images without ground truth",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="folder of a data set (or of several), or 'embedded' / 'embedded:tiny'")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--layout", choices=list(LAYOUTS) + sorted(LAYOUT_ALIASES), metavar="LAYOUT",
                        help=f"force a layout instead of detecting it: {', '.join(LAYOUTS)} (or a data set name "
                        "such as rain800, rain1200, rain200h)")
    parser.add_argument("--order", help="side-by-side: which half is rainy (rainy-left / rainy-right)")
    parser.add_argument("--skip-bad", action="store_true", help="skip bad files with a warning instead of failing")
    parser.add_argument("--verify", action="store_true", help="also read every image header (sizes of pairs)")


def _resolve(path: str) -> Path:
    if path in ("embedded", "embedded:default", "embedded:tiny") and not Path(path).exists():
        return ensure(size=path.partition(":")[2] or "default")
    return Path(path)


def _human(ds: Dataset, indent: str = "") -> str:
    lines = [f"{indent}root:   {ds.root}", f"{indent}layout: {ds.layout} - {_DESCRIPTION[ds.layout]}",
             f"{indent}splits:"]
    width = max(len(k) for k in ds.splits)
    for name, split in ds.splits.items():
        counts = []
        if split.pairs:
            counts.append(f"{len(split.pairs)} pairs")
        if split.unlabeled:
            counts.append(f"{len(split.unlabeled)} unlabeled")
        first = split.pairs[0].name if split.pairs else (split.unlabeled[0].name if split.unlabeled else "")
        lines.append(f"{indent}  {name.ljust(width)}  {', '.join(counts) or 'empty'}  (first: {first})")
    try:
        groups = ds.test_groups()
        lines.append(f"{indent}test groups: " + ", ".join(f"{k} ({len(v)})" for k, v in groups.items()))
    except DataError:
        lines.append(f"{indent}test groups: none (no ground truth to evaluate on)")
    for w in ds.warnings:
        lines.append(f"{indent}warning: {w}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        root = _resolve(args.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # printed below, with the summary
            found = find_datasets(root, layout=args.layout, order=args.order, skip_bad=args.skip_bad,
                                  verify=args.verify)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        if list(found) == ["."]:
            print(json.dumps(found["."].summary()))
        else:
            print(json.dumps({"root": os.path.abspath(root), "datasets": {k: v.summary() for k, v in found.items()}}))
        for ds in found.values():
            for w in ds.warnings:
                print(f"warning: {w}", file=sys.stderr)
        return 0
    if list(found) == ["."]:
        print(_human(found["."]))
    else:
        print(f"{root}: {len(found)} data sets")
        for name, ds in found.items():
            print(f"\n[{name}]")
            print(_human(ds, "  "))
    return 0
