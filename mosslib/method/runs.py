"""Training runs cached by their configuration, shared by every notebook of the book.

``trained("quick", "full")`` returns the run folder of that configuration, training it first
if needed (resuming an interrupted run). The folder name carries a hash of the whole
configuration, so a changed setting is a new run and an unchanged one is never retrained;
Table 1's MOSS model is Table 4's ``full`` run, trained once, and runs that differ only in
self-training settings (``no_selftrain``, ``no_tv``) start from its pre-training checkpoint.
``evaluated(run)`` scores a run's best checkpoint on its configuration's test set and caches the
per-image numbers in the run folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..data.layouts import open_dataset
from ..measure.evaluate import evaluate_pairs, summarise
from ..measure.memdiag import diagnose
from ..measure.metrics import describe
from .checkpoint import atomic_write_text, load_checkpoint, load_model
from .lineage import extend_run, extends, fork_pretrained, pretraining_matches
from .profiles import TrainConfig, config_from_dict, config_hash, make_config
from .trainer import Trainer
from .trainset import test_dataset

__all__ = ["run_dir", "trained", "evaluated", "config_of_run", "pretrained_sibling", "shorter_sibling"]


def run_dir(cfg: TrainConfig, runs_dir: str | os.PathLike = "runs") -> Path:
    """``runs/<profile>/<ablation>[-<arch>][-l<percent>]-<hash>``."""
    name = cfg.ablation
    if cfg.arch != "moedn":
        name += f"-{cfg.arch}"
    if cfg.data.label_fraction < 1.0:
        name += f"-l{round(cfg.data.label_fraction * 100)}"
    return Path(runs_dir) / cfg.profile / f"{name}-{config_hash(cfg)}"


def trained(
    profile: str,
    config: str = "full",
    data_root: str | None = None,
    runs_dir: str | os.PathLike = "runs",
    overrides: dict | None = None,
    seed: int = 0,
    arch: str = "moedn",
    quiet: bool = False,
) -> Path:
    """The folder of a finished run of this configuration (trained or resumed when needed)."""
    cfg = make_config(profile, config, data_root=data_root, overrides=overrides, seed=seed, arch=arch)
    out = run_dir(cfg, runs_dir)
    if (out / "done.json").exists():
        return out
    if not (out / "checkpoint.pt").exists():
        shorter = shorter_sibling(cfg, runs_dir)
        src = None if shorter is not None else pretrained_sibling(cfg, runs_dir)
        if shorter is not None:
            extend_run(shorter, cfg, out)
        elif src is not None:
            fork_pretrained(src, cfg, out)
    Trainer(cfg, out, quiet=quiet).fit(resume=True)
    return out


def shorter_sibling(cfg: TrainConfig, runs_dir: str | os.PathLike = "runs") -> Path | None:
    """The furthest-trained run of the same profile that ``cfg`` continues (see ``lineage.extends``):
    the same configuration with fewer steps, e.g. after a profile's budget was raised."""
    best, best_step = None, -1
    for ckpt in sorted((Path(runs_dir) / cfg.profile).glob("*/checkpoint.pt")):
        try:
            saved = config_of_run(ckpt.parent)
            if saved == cfg or not extends(saved, 0, cfg):  # cheap filter before reading the step
                continue
            step = int(load_checkpoint(ckpt)["step"])
            if extends(saved, step, cfg) and step > best_step:
                best, best_step = ckpt.parent, step
        except (OSError, ValueError, KeyError):
            continue
    return best


def pretrained_sibling(cfg: TrainConfig, runs_dir: str | os.PathLike = "runs") -> Path | None:
    """A run of the same profile whose pre-training ``cfg`` can share (see ``fork_pretrained``)."""
    for pre in sorted((Path(runs_dir) / cfg.profile).glob("*/pretrain.pt")):
        try:
            if pretraining_matches(config_of_run(pre.parent), cfg):
                return pre.parent
        except (OSError, ValueError, KeyError):
            continue
    return None


def config_of_run(run: str | os.PathLike) -> TrainConfig:
    run = Path(run)
    path = run / "config.json"
    if path.exists():
        return config_from_dict(json.loads(path.read_text()))
    return config_from_dict(load_checkpoint(run / "checkpoint.pt")["config"])


def evaluated(run: str | os.PathLike, convention: str = "rgb", which: str = "best", test: str | None = None) -> dict:
    """Metrics of a run on its test set (or ``test``, a folder), cached in the run folder.

    Returns ``{"splits": {group: {"n", "psnr", "ssim"}}, "per_image": {group: [...]}, ...}``.
    """
    run = Path(run)
    cfg = config_of_run(run)
    tag = config_hash(cfg) if test is None else Path(test).name
    cache = run / f"eval-{which}-{convention}-{tag}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    dataset = test_dataset(cfg.data) if test is None else open_dataset(test)
    model = load_model(run, which=which)
    per_image = evaluate_pairs(dataset.test_groups(), model, convention)
    result = {
        "run": str(run),
        "which": which,
        "test": str(dataset.root),
        "convention": convention,
        "convention_text": describe(convention),
        "splits": summarise(per_image),
        "per_image": per_image,
        "profile": cfg.profile,
        "ablation": cfg.ablation,
        "seed": cfg.seed,
        "config_hash": config_hash(cfg),
    }
    atomic_write_text(json.dumps(result, indent=2) + "\n", cache)
    return result


def memory_diagnosed(run: str | os.PathLike, which: str = "best") -> dict:
    """The memory diagnostics (:func:`mosslib.measure.memdiag.diagnose`) of a run's model on its test
    set, cached in the run folder; ``{}`` for a run without a memory."""
    run = Path(run)
    cfg = config_of_run(run)
    if cfg.arch != "moedn" or not cfg.model.use_memory:
        return {}
    cache = run / f"memory-{which}-{config_hash(cfg)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    model = load_model(run, which=which)
    result = {"run": run.name, "which": which, "profile": cfg.profile, "seed": cfg.seed,
              **diagnose(model, test_dataset(cfg.data).test_groups(), n_boot=2000)}
    atomic_write_text(json.dumps(result, indent=2) + "\n", cache)
    return result
