"""PSNR/SSIM of a model - or of the rainy inputs themselves (the paper's "Input" row) - on a
test set, per evaluation group (DDN-SIRR: dense = inputs 1-10, sparse = 11-20, plus all).

``python -m mosslib evaluate --data PATH [--checkpoint CKPT | --method input] [--convention rgb|y]
[--ensemble N] --json`` (``--ensemble``: the flip self-ensemble of :mod:`mosslib.model.selfensemble`).
Without ``--checkpoint`` and with ``--method model`` (the default) the shipped model is used.
Images go through the model whole, with the same padding as inference (MOEDN pads to a multiple
of 8 inside and crops back).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .metrics import describe, psnr, ssim
from ..model.selfensemble import ENSEMBLE_SIZES, self_ensemble

__all__ = ["derain_tensor", "evaluate_pairs", "summarise", "add_arguments", "run"]


@torch.no_grad()
def derain_tensor(model, rainy: np.ndarray, device: str = "cpu") -> np.ndarray:
    """uint8 (H, W, 3) -> derained uint8 (H, W, 3) with a [-1, 1] model, whole image."""
    x = torch.from_numpy(np.ascontiguousarray(rainy)).permute(2, 0, 1).float().div(127.5).sub(1.0)
    y = model(x.unsqueeze(0).to(device)).float()[0].cpu()
    return np.round((y.clamp(-1, 1) + 1.0) * 127.5).permute(1, 2, 0).numpy().astype(np.uint8)


def evaluate_pairs(groups: dict, model=None, convention: str = "rgb", device: str = "cpu", progress: bool = False) -> dict:
    """Per-image metrics: ``{group: [{"name", "psnr", "ssim"}]}``; ``model=None`` scores the inputs."""
    from tqdm.auto import tqdm

    out = {}
    total = sum(len(v) for v in groups.values())
    bar = tqdm(total=total, disable=not progress, desc="evaluate")
    for name, pairs in groups.items():
        rows = []
        for pair in pairs:
            rainy, clean = pair.load()
            pred = rainy if model is None else derain_tensor(model, rainy, device)
            rows.append({"name": pair.name, "psnr": psnr(pred, clean, convention), "ssim": ssim(pred, clean, convention)})
            bar.update(1)
        out[name] = rows
    bar.close()
    return out


def summarise(per_image: dict) -> dict:
    """Mean PSNR/SSIM per group, plus "all" over every image when there are several groups."""
    groups = dict(per_image)
    if len(groups) > 1 and "all" not in groups:
        groups["all"] = [r for rows in per_image.values() for r in rows]
    res = {}
    for name, rows in groups.items():
        ps = [r["psnr"] for r in rows]
        res[name] = {
            "n": len(rows),
            "psnr": float(np.mean([min(p, 100.0) for p in ps])) if ps else math.nan,
            "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else math.nan,
        }
    return res


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
    from ..method.checkpoint import CheckpointError, load_model
    from ..data.layouts import DataError, open_dataset

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
