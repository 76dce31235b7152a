"""Export a run's chosen model as a small inference checkpoint with a model card - the way the
shipped model ``mosslib/weights/moss_cpu.pt`` (and its ``moss_cpu.json`` card) is made.

``python -m mosslib export RUN (-o OUT.pt | --ship) [--fp32] [--eval NAME=FOLDER ...]``: the shipped
model is written only with ``--ship``.

RUN may also be a model file that ``export`` wrote before (on a machine without the test sets,
say a GPU trainer): its weights are kept bit for bit and its card gains the ``--eval`` scores
(:func:`rescore_model`).

The exported weights are the run's ``best.pt`` (chosen on the validation split of the training
data, never on a test set), stored in fp16 by default (half the size; inference runs in fp32).
Each ``--eval`` test set is scored with the *exported* weights in both metric conventions, so the
card's numbers are those of the file that ships.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ..method.checkpoint import CheckpointError, atomic_write_text, load_checkpoint, load_model, run_metadata, save_model
from ..model.config import to_dict
from ..method.runs import config_of_run
from ..method.selection import SelectionPolicy
from ..data.layouts import open_dataset
from ..measure.evaluate import evaluate_pairs, summarise
from ..measure.metrics import describe
from ..method.checkpoint import shipped_model_path
from ..data.layouts import DataError

__all__ = ["export_model", "rescore_model", "model_card", "selection_rule", "card_markdown", "add_arguments", "run"]

CONVENTIONS = ("rgb", "y")


def model_card(run: str | Path) -> dict:
    """Where a run's best model came from: configuration, steps, the validation score that chose it."""
    run = Path(run)
    best = load_checkpoint(run / "best.pt")
    last = run / "done.json"
    done = json.loads(last.read_text()) if last.exists() else None
    return {
        "run": run.name,
        "config": best["config"],
        "best_step": int(best["step"]),
        "validation": best.get("best", {}),
        "steps_trained": done["steps"] if done else None,
        "finished": done is not None,
        "selection": selection_rule(best["config"]),
        "trained_with": best.get("meta", {}),
        **({"trained_in_segments": best["segments"]} if best.get("segments") else {}),
        **_lineage(best["config"]),
    }


def selection_rule(config: dict) -> str:
    """How the run chose its best checkpoint, in words (:meth:`SelectionPolicy.describe`)."""
    return SelectionPolicy.of(config).describe()


def _lineage(config: dict) -> dict:
    """For a warm-started run: where its start came from (path, SHA-256, and that model's own card
    without its scores), so a card tells the whole training history."""
    init = (config.get("optim") or {}).get("init_from")
    if not init:
        return {}
    entry = {"from": init, "sha256": config["optim"].get("init_sha256", "")}
    try:
        parent = load_checkpoint(init).get("card")
    except CheckpointError:
        parent = None
    if parent:
        entry["card"] = {k: v for k, v in parent.items() if k not in ("metrics", "exported", "file_bytes")}
    return {"warm_start": entry}


def _score(model, evals: dict[str, str] | None, progress: bool) -> dict:
    """``{name: {convention: {convention, folder, splits}}}`` of a model on each test folder."""

    metrics = {}
    for name, folder in (evals or {}).items():
        groups = open_dataset(folder).test_groups()
        metrics[name] = {}
        for conv in CONVENTIONS:
            res = summarise(evaluate_pairs(groups, model, conv, progress=progress))
            metrics[name][conv] = {"convention": describe(conv), "folder": str(folder), "splits": res}
    return metrics


def _write(model, out: Path, card: dict, dtype) -> dict:
    save_model(model, out, config=to_dict(model.cfg), dtype=dtype, card=card)
    card["file_bytes"] = out.stat().st_size  # of the final file (so only in the JSON card)
    atomic_write_text(json.dumps(card, indent=2) + "\n", out.with_suffix(".json"))
    return card


def export_model(run: str | Path, out: str | Path, half: bool = True, evals: dict[str, str] | None = None,
                 progress: bool = False) -> dict:
    """Write ``out`` (weights) and ``out.json`` (card); returns the card. ``evals``: name -> test folder."""
    run, out = Path(run), Path(out)
    if not (run / "best.pt").is_file():
        policy = SelectionPolicy.of(config_of_run(run)) if (run / "checkpoint.pt").is_file() else SelectionPolicy()
        raise CheckpointError(policy.nothing_chosen(run))
    card = model_card(run)
    card["storage"] = "fp16" if half else "fp32"
    model = load_model(run, which="best")
    out.parent.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else None
    save_model(model, out, config=to_dict(model.cfg), dtype=dtype)
    card["metrics"] = _score(load_model(out), evals, progress)  # score the weights as stored
    card["exported"] = run_metadata()
    return _write(model, out, card, dtype)


def rescore_model(path: str | Path, out: str | Path, evals: dict[str, str], progress: bool = False) -> dict:
    """Copy an exported model file to ``out`` (weights bit for bit) with its card's ``metrics``
    replaced by the scores on ``evals``; the card records where and when it was re-scored."""
    path, out = Path(path), Path(out)
    ckpt = load_checkpoint(path)
    card = ckpt.get("card")
    if ckpt.get("kind") != "model" or not card:
        raise CheckpointError(f"{path}: not a model file written by export (no model card); export its run folder")
    model = load_model(path)
    stored = {v.dtype for v in ckpt["model"].values() if v.is_floating_point()}
    dtype = torch.float16 if stored == {torch.float16} else None
    card = {k: v for k, v in card.items() if k != "file_bytes"}
    card["metrics"] = _score(model, evals, progress)
    card["rescored"] = {"from": str(path), **run_metadata()}
    out.parent.mkdir(parents=True, exist_ok=True)
    return _write(model, out, card, dtype)


def card_markdown(card: dict) -> str:
    """The card's scores as a Markdown table (the README's model card quotes it verbatim)."""
    lines = ["| test set | split | n | PSNR rgb | SSIM rgb | PSNR y | SSIM y |", "|---|---|---|---|---|---|---|"]
    for name, by_conv in card["metrics"].items():
        rgb, y = by_conv["rgb"]["splits"], by_conv["y"]["splits"]
        for split in rgb:
            a, b = rgb[split], y[split]
            lines.append(f"| {name} | {split} | {a['n']} | {a['psnr']:.2f} | {a['ssim']:.4f} | {b['psnr']:.2f} | {b['ssim']:.4f} |")
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("run", help="training run folder (its best.pt is exported), or a model file written by export "
                              "(its card gains the --eval scores)")
    where = p.add_mutually_exclusive_group(required=True)  # the package's weights change only when asked
    where.add_argument("-o", "--out", default=None, help="output .pt (its card is written beside it as .json)")
    where.add_argument("--ship", action="store_true",
                       help="write the package's shipped model (mosslib/weights/moss_cpu.pt) and its card")
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
    p.add_argument("--eval", action="append", default=[], metavar="NAME=FOLDER",
                   help="score the exported model on a test set, both conventions (repeatable)")


def run(args) -> int:

    evals = {}
    for item in args.eval:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            print(f"error: --eval {item!r} is not of the form NAME=FOLDER", file=sys.stderr)
            return 2
        evals[name] = folder
    out = shipped_model_path() if args.ship else Path(args.out)
    try:
        if Path(args.run).is_file():
            card = rescore_model(args.run, out, evals, progress=True)
        else:
            card = export_model(args.run, out, half=not args.fp32, evals=evals, progress=True)
    except (CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(out), "bytes": card["file_bytes"], "metrics": card["metrics"]}, indent=2))
    if card["metrics"]:
        print(card_markdown(card), file=sys.stderr)
    return 0
