"""Timing probes that plan a training stage: the trainer's activation layout and batch size.

``python experiments/train-probes/trainprobe.py --layouts N`` and ``--batches B1,B2,...`` (formerly
``train --time-layouts`` / ``--time-batches``) time the
whole ``Trainer.train_step`` (teacher, memory, EMA and optimiser included) of one configuration,
its variants timed in alternating rounds in one process (:func:`mosslib.apps.timing.time_interleaved`),
so that a change in machine load hits them alike; :func:`choose_batch` picks a batch.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import tempfile
from pathlib import Path

import torch

from mosslib.apps.bench import device_name
from mosslib.apps.timing import time_interleaved
from mosslib.method.profiles import ABLATIONS, PROFILES, make_config
from mosslib.method.trainer import Trainer
from mosslib.method.trainset import build_training_data

__all__ = ["time_train_layouts", "time_train_batches", "choose_batch"]


def _time_trainers(variants: dict, device, steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per whole ``Trainer.train_step`` of each ``{name: (cfg, memory_format)}``
    (configurations that differ at most in the batch size), timed in alternating rounds in one
    process; each variant's batches are made beforehand, as a prefetching run sees them."""
    device = torch.device(device)
    base = build_training_data(next(iter(variants.values()))[0])
    with tempfile.TemporaryDirectory() as tmp:
        fns = {}
        for name, (cfg, fmt) in variants.items():
            data = base.with_batch_size(cfg.data.batch_size)
            t = Trainer(cfg, Path(tmp) / name, device=str(device), quiet=True, prefetch=False, data=data)
            set_memory_format(t, fmt)
            batches = [t._make_batch(k) for k in range(warmup + steps)]
            fns[name] = lambda t=t, b=batches: t.train_step(b[t.step])
        times = time_interleaved(fns, steps, warmup=warmup, device=device)
    return {k: statistics.median(v) for k, v in times.items()}


def set_memory_format(trainer: Trainer, memory_format: str) -> None:
    """The activations' layout of a trainer's MOEDN: "auto" (channels_last on CPU, contiguous
    elsewhere), "channels_last" (on CUDA the weights too) or "contiguous"; speed only."""
    if memory_format not in ("auto", "channels_last", "contiguous"):
        raise ValueError(f"memory format must be auto, channels_last or contiguous, got {memory_format!r}")
    if memory_format == "auto":
        return
    for net in (trainer.model, trainer.teacher.net):  # the teacher is a copy made at construction
        net.channels_last = memory_format == "channels_last"
        if net.channels_last and trainer.device.type == "cuda":  # cuDNN's NHWC kernels want NHWC weights
            net.to(memory_format=torch.channels_last)


def time_train_layouts(cfg, device="cpu", steps: int = 20, warmup: int = 3) -> dict:
    """Seconds per training step of ``cfg`` (the whole ``Trainer.train_step``: teacher, memory,
    EMA and optimiser included; batches made beforehand, as a prefetching run sees them) with
    contiguous and with channels_last activations, in alternating rounds in one process."""
    s = _time_trainers({f: (cfg, f) for f in ("contiguous", "channels_last")}, device, steps, warmup)
    faster = min(s, key=s.get)
    return {"device": device_name(torch.device(device)), "steps": steps, "batch": cfg.data.batch_size,
            "crop": cfg.data.crop, "precision": cfg.optim.precision, "s_per_step": s, "faster": faster,
            "contiguous_over_channels_last": s["contiguous"] / s["channels_last"]}


def time_train_batches(cfg, batch_sizes, device="cpu", steps: int = 10, warmup: int = 3,
                       memory_format: str = "auto") -> dict:
    """Seconds per training step and labeled images per second of ``cfg`` at each batch size (the
    same crops, layout and precision), in alternating rounds in one process: a small network
    leaves a GPU idle at the paper's batch, and a larger one may train more images per second."""
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch sizes must be >= 1, got {list(batch_sizes)}")
    variants = {str(b): (dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=b)), memory_format)
                for b in sizes}
    s = _time_trainers(variants, device, steps, warmup)
    ips = {b: int(b) / t for b, t in s.items()}
    best = max(ips, key=ips.get)
    return {"device": device_name(torch.device(device)), "steps": steps, "crop": cfg.data.crop,
            "precision": cfg.optim.precision, "memory_format": memory_format, "lr": cfg.optim.lr,
            "s_per_step": s, "images_per_s": ips, "fastest_images_per_s": int(best),
            "speedup_over_smallest": ips[best] / ips[str(sizes[0])]}


def choose_batch(timing: dict, min_gain: float = 1.2) -> dict:
    """From :func:`time_train_batches`'s result: the batch with the most images per second if it
    trains ``min_gain`` times the images per second of the smallest (the configured batch), else
    the smallest; Adam's lr scaled by sqrt(B / smallest); ``step_ratio`` its step time over the
    smallest's."""
    ips, t = timing["images_per_s"], timing["s_per_step"]
    b0 = min(map(int, ips))
    best = max(map(int, ips), key=lambda b: ips[str(b)])
    b = best if ips[str(best)] >= min_gain * ips[str(b0)] else b0
    return {"configured": b0, "batch": b, "lr": timing["lr"] * math.sqrt(b / b0),
            "step_ratio": t[str(b)] / t[str(b0)], "gain": ips[str(b)] / ips[str(b0)]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--config", default="full", choices=sorted(ABLATIONS))
    p.add_argument("--data", default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--layouts", type=int, default=None, metavar="N", help="time N steps in each activation layout")
    p.add_argument("--batches", default=None, metavar="B1,B2,...", help="time --steps steps at each batch size")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--memory-format", default="auto", help="the layout for --batches")
    args = p.parse_args(argv)
    cfg = make_config(args.profile, args.config, data_root=args.data, overrides=args.set)
    if args.layouts:
        print(json.dumps(time_train_layouts(cfg, args.device, args.layouts)))
    if args.batches:
        sizes = [int(b) for b in args.batches.split(",") if b.strip()]
        print(json.dumps(time_train_batches(cfg, sizes, args.device, args.steps, memory_format=args.memory_format)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
