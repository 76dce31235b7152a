"""``python -m mosslib memory``: is the rain memory used? Usage, read sharpness, norms and ablations
of a model's memory on a test set (the shipped model by default); the diagnostics themselves are
:mod:`mosslib.measure.memdiag`.
"""
from __future__ import annotations

import json
import sys

from ..data.layouts import DataError, open_dataset
from ..measure.memdiag import diagnose, memory_of
from ..method.checkpoint import CheckpointError, load_model

__all__ = ["add_arguments", "run"]


def add_arguments(p) -> None:
    p.add_argument("--data", required=True, help="a test set folder with ground truth (e.g. ../shared/data/DDN-SIRR)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file or run folder (default: the shipped model)")
    p.add_argument("--which", default="best", choices=("best", "last"), help="for a run folder: best (validation) or last")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _report(res: dict) -> str:
    u, a, nm = res["usage"], res["attention"], res["norms"]
    lines = [
        f"{res['checkpoint']}: memory of {res['items']} items, {res['positions']} query positions",
        f"  usage      {u['alive']} items chosen over the data ({u['trained_alive']} ever in training); "
        f"the most-used takes {100 * u['top_share']:.1f} %; perplexity {u['perplexity']:.1f}",
        f"  read       largest weight {a['max_weight']:.4f} on average (uniform: {a['uniform_weight']:.4f}); "
        f"entropy {a['entropy']:.3f} of at most log m = {a['uniform_entropy']:.3f}",
        f"  norms      items {nm['item_min']:.3g} / {nm['item_median']:.3g} / {nm['item_max']:.3g} (min / median / max); "
        f"queries median {nm['query_median']:.3g}",
        "  ablation   PSNR (RGB) of the ablated read minus as trained, 95 % bootstrap CI over test images:",
    ]
    for how, by_group in res["ablation"].items():
        for g, d in by_group.items():
            lo, hi = res["ablation_ci"][how][g]
            lines.append(f"    {how:6s} {g:8s} {d:+.3f} dB [{lo:+.3f}, {hi:+.3f}]  (as trained {res['trained'][g]:.2f} dB)")
    return "\n".join(lines)


def run(args) -> int:
    try:
        groups = open_dataset(args.data).test_groups()
        model = load_model(args.checkpoint, which=args.which, device=args.device)
        memory_of(model)
    except (DataError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = {"checkpoint": getattr(model, "checkpoint_path", None), "data": args.data,
           **diagnose(model, groups, args.device)}
    print(json.dumps(res) if args.json else _report(res))
    return 0
