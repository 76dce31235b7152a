"""``python -m mosslib evaluate``: PSNR/SSIM of a model, or of the rainy inputs, on a test set.

``python -m mosslib evaluate --data PATH [--checkpoint CKPT | --method input] [--convention rgb|y]
[--ensemble N] --json`` (``--ensemble``: the flip self-ensemble of :mod:`mosslib.model.selfensemble`).
Without ``--checkpoint`` and with ``--method model`` (the default) the shipped model is used.
The scoring is :mod:`mosslib.measure.evaluate`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..data.layouts import DataError, open_dataset
from ..measure.evaluate import evaluate_pairs, summarise
from ..measure.metrics import describe
from ..method.checkpoint import CheckpointError, load_model
from ..model.selfensemble import ENSEMBLE_SIZES, self_ensemble

__all__ = ["add_arguments", "run"]


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="test set folder (e.g. ../shared/data/DDN-SIRR)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file or run folder (default: the shipped model)")
    p.add_argument("--which", default="best", choices=("best", "last"), help="for a run folder: best (validation) or last")
    p.add_argument("--method", default="model", choices=("model", "input"), help="input: score the rainy inputs themselves")
    p.add_argument("--convention", default="rgb", choices=("rgb", "y"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES,
                   help="average N mirrored passes (mosslib.model.selfensemble; default 1)")
    p.add_argument("--per-image", action="store_true", help="include per-image values in the JSON")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    try:
        dataset = open_dataset(args.data)
        groups = dataset.test_groups()
        model = checkpoint_path = None
        if args.method == "model":
            model = load_model(args.checkpoint, which=args.which, device=args.device)
            checkpoint_path = getattr(model, "checkpoint_path", None)
            model = self_ensemble(model, args.ensemble)
    except (DataError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    per_image = evaluate_pairs(groups, model, args.convention, args.device, progress=not args.json)
    result = {
        "data": str(Path(args.data)),
        "layout": dataset.layout,
        "method": args.method,
        "checkpoint": checkpoint_path,
        "ensemble": args.ensemble if args.method == "model" else 1,
        "convention": args.convention,
        "convention_text": describe(args.convention),
        "splits": summarise(per_image),
    }
    if args.per_image:
        result["per_image"] = per_image
    if args.json:
        print(json.dumps(result))
    else:
        ens = f", self-ensemble x{result['ensemble']}" if result["ensemble"] > 1 else ""
        print(f"{result['data']} ({result['layout']}), method {args.method}{ens}, convention {args.convention}")
        for name, s in result["splits"].items():
            print(f"  {name:8s} n={s['n']:4d}  PSNR {s['psnr']:.2f} dB  SSIM {s['ssim']:.4f}")
    return 0
