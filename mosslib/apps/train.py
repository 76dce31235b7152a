"""``python -m mosslib train``: pre-train and self-train MOEDN (MOSS) with a profile.

The training itself is :class:`mosslib.method.trainer.Trainer`; this module parses the options,
makes the configuration (:func:`mosslib.method.profiles.make_config`), sets up DDP when launched
by ``torchrun`` (``WORLD_SIZE`` > 1) and reports.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from ..method.checkpoint import CheckpointError
from ..method.lineage import file_sha256, fork_pretrained
from ..method.profiles import ABLATIONS, PROFILES, config_hash, make_config
from ..method.trainer import Trainer, TrainingDiverged, rank

__all__ = ["add_arguments", "run"]


# -- command line -----------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--config", default="full", choices=sorted(ABLATIONS), help="ablation of Table 4 (default: full MOSS)")
    p.add_argument("--model", default="moedn", help="architecture: moedn (default) or a baseline such as prenet")
    p.add_argument("--data", default=None, help="data root (default: $DATA_ROOT for cpu/paper, embedded data otherwise)")
    p.add_argument("--unlabeled", default=None, help="folder of unlabeled rainy images (D_U), overrides the profile's")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default: runs/<profile>/<config>-<hash>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--fork-from", default=None, metavar="RUN",
        help="start from RUN/pretrain.pt (a run that differs only in self-training settings) instead of pre-training again",
    )
    p.add_argument(
        "--init-from", default=None, metavar="CKPT",
        help="warm start: begin from CKPT's weights and memory (a model checkpoint such as the shipped one, or a run's best.pt) "
             "with a fresh optimiser; combine with --set optim.pretrain_steps=0 to self-train from the first step",
    )
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. optim.lr=2e-4")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop within SECONDS of training (counted from the first step, start-up excluded): when less "
                        "than one validation's time is left, the step in hand is validated and checkpointed, the exit "
                        "status is 0, and --resume continues the same schedule")


def run(args) -> int:
    overrides = list(args.set)
    if args.steps is not None:
        overrides.append(f"optim.steps={args.steps}")
    if args.precision:
        overrides.append(f"optim.precision={args.precision}")
    if args.init_from:
        if not Path(args.init_from).is_file():
            print(f"error: {args.init_from}: no such warm-start checkpoint file", file=sys.stderr)
            return 2
        overrides += [f"optim.init_from={os.path.abspath(args.init_from)}", f"optim.init_sha256={file_sha256(args.init_from)}"]
    if args.unlabeled is not None:
        overrides.append(f"data.unlabeled={os.path.abspath(args.unlabeled) if args.unlabeled else ''}")
    try:
        cfg = make_config(args.profile, args.config, data_root=args.data, overrides=overrides, seed=args.seed, arch=args.model)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    if args.time_limit is not None and args.time_limit < 0:
        print(f"error: --time-limit must be >= 0 seconds, got {args.time_limit}", file=sys.stderr)
        return 2
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        backend = "nccl" if args.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if args.device.startswith("cuda"):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    out = Path(args.out) if args.out else Path("runs") / cfg.profile / f"{cfg.ablation}-{config_hash(cfg)}"
    if (out / "checkpoint.pt").exists() and not args.resume:
        print(f"error: {out} already holds a run; pass --resume to continue it or choose another --out", file=sys.stderr)
        return 2
    if args.fork_from and not (out / "checkpoint.pt").exists():
        try:
            fork_pretrained(args.fork_from, cfg, out)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.resume = True
    try:
        trainer = Trainer(cfg, out, device=args.device, quiet=args.quiet)
        summary = trainer.fit(resume=args.resume, time_limit=args.time_limit)
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if "another process" not in str(exc):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if rank() == 0:
        if summary.get("stopped") == "time_limit":
            print(f"[mosslib train] {out}: --time-limit reached at step {summary['steps']} of "
                  f"{cfg.optim.steps}; checkpointed, --resume continues", file=sys.stderr)
        print(json.dumps({"out": str(out), "steps": summary["steps"], "best": summary["best"],
                          **({"stopped": summary["stopped"]} if "stopped" in summary else {})}))
    return 0
