"""``python -m mosslib bench``: MOEDN and its peers timed side by side in one run (Fig. 8).

For each network (:data:`mosslib.model.baselines.MODEL_NAMES`): parameters, GFLOP per 256x256 forward
(``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products), median latency
of repeated forwards at 256x256 and 512x512 (all networks timed in interleaved rounds, so a
change in machine load hits all alike), peak tensor memory of one forward, achieved GFLOP/s and
its fraction of the machine's ceiling, measured in the same rounds as the networks (a 64->64 3x3
fp32 convolution at 256x256, best of NCHW and channels_last, and a 2048x2048 fp32 matrix
product; bf16 versions too). MOEDN is also timed through :func:`mosslib.model.fast.prepare` (variant
``fast``, at :func:`mosslib.model.fast.default_precision`: bf16 only where native). Then the
training throughput of MOEDN (forward, L1 loss, backward, Adam step) in the ``quick`` and
``paper`` profiles' batch and crop sizes, fp32 and bf16 autocast; the memory module's share of
MOEDN's time at 512x512; and, when DDN-SIRR is at hand, the PSNR change of the fast path against
fp32. The targets of the speed issue are printed as PASS/FAIL lines. Results go to
``results/<profile>/timing.csv``; where the time goes (``--trace-ops``) and the measured numbers
are in ``docs/speed.md``.

Timings on a shared machine are noisy (2 OMP threads stall whenever another job holds a core):
compare rows of one run, read the ``*_min`` columns and the load averages in the output, and
prefer ``--threads 1`` when other jobs run.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .benchreport import evaluate_targets, write_csv, human_report
from .timing import log_line, time_interleaved, median_ms, ceiling_work, ceiling_gflops, gflop, peak_memory_mb, profile_batch, train_throughput
from ..data.layouts import open_dataset
from ..measure.evaluate import psnr_change_vs_fp32
from ..measure.places import portable_path
from ..method.checkpoint import load_model, shipped_model_path
from ..model import fast
from ..model.baselines import MODEL_NAMES, build_model, count_params

__all__ = [
    "add_arguments",
    "run",
    "measure",
    "device_name",
]

# name -> (description, comparison, threshold)
# -- PSNR check ---------------------------------------------------------------------------------
def _default_data_root() -> Path | None:
    env = os.environ.get("DATA_ROOT")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[3] / "shared" / "data"
    return beside if beside.is_dir() else None


def _sirr_pairs(root: Path) -> list:
    groups = open_dataset(root / "DDN-SIRR").test_groups()
    return [p for g in groups.values() for p in g]


def _psnr_model(checkpoint: str | None) -> tuple[nn.Module, str]:
    if checkpoint:
        return load_model(checkpoint), f"checkpoint {portable_path(checkpoint)}"
    if shipped_model_path().is_file():
        return load_model(), f"shipped model {portable_path(shipped_model_path())}"
    torch.manual_seed(0)
    return build_model("moedn"), "untrained MOEDN (torch.manual_seed(0)); no trained checkpoint available yet"


# -- the whole benchmark ------------------------------------------------------------------------
def measure(device="cpu", quick: bool = False, models=MODEL_NAMES, repeats: int | None = None,
            data_root: str | os.PathLike | None = None, checkpoint: str | None = None, train: bool = True,
            psnr: bool = True) -> dict:
    """Run the benchmark; returns the ``--json`` object (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    repeats = repeats or (2 if quick else 10)
    sizes = (32, 64) if quick else (256, 512)
    threads = torch.get_num_threads()
    log_line(f"bench: {device}, {threads} threads, sizes {sizes}, {repeats} repeats"
             + (" (quick mode: tiny sizes, numbers are not meaningful)" if quick else ""))
    result: dict = {"device": device_name(device), "threads": threads, "quick": quick, "sizes": list(sizes),
                    "repeats": repeats, "torch": torch.__version__, "cpu": fast.cpu_info(),
                    "loadavg_start": _loadavg()}
    work = ceiling_work(device, quick)  # timed in the same rounds as the networks at the first size

    # networks, deterministic weights
    nets = {}
    for name in models:
        torch.manual_seed(0)
        nets[name] = build_model(name).eval().to(device)
    fast_precision = fast.default_precision(device)  # never slower than fp32 on this machine
    entries: list[dict] = []
    fns_by_key: dict[str, Callable] = {}
    for name, net in nets.items():
        g = gflop(net, sizes[0], device) * (256 / sizes[0]) ** 2
        entries.append({"name": name, "variant": "fp32", "params": count_params(net), "gflop_256": g})
        fns_by_key[f"{name}/fp32"] = net
        if name == "moedn":
            prepared = fast.prepare(net, fast_precision, device)
            entries.append({"name": name, "variant": "fast", "params": count_params(net), "gflop_256": g,
                            "precision": fast_precision, "path": prepared.describe()})
            fns_by_key[f"{name}/fast"] = prepared
    mem_hook = _MemoryTimer(nets["moedn"].memory) if "moedn" in nets and nets["moedn"].memory is not None else None
    timed: dict[int, dict[str, list[float]]] = {}
    gen = torch.Generator().manual_seed(0)
    for side in sizes:
        x = (torch.rand(1, 3, side, side, generator=gen) * 2 - 1).to(device)
        fns = {k: (lambda f=f: f(x)) for k, f in fns_by_key.items()}
        if side == sizes[0]:
            fns |= {f"ceiling/{k}": fn for k, (fn, _) in work.items()}
        if mem_hook is not None:
            mem_hook.reset(enabled=side == sizes[1])
        log_line(f"timing {len(fns)} forwards at {side}x{side}, {repeats} rounds ...")
        with torch.no_grad():
            timed[side] = time_interleaved(fns, repeats, warmup=1 if quick else 2, device=device)
        if mem_hook is not None and side == sizes[1]:
            totals = timed[side]["moedn/fp32"]
            mem = mem_hook.per_call()[-len(totals):]
            result["memory_share_512"] = statistics.median(m / t for m, t in zip(mem, totals))
            mem_hook.reset(enabled=False)
    result["ceiling_gflops"] = ceiling_gflops(work, {k: timed[sizes[0]][f"ceiling/{k}"] for k in work})
    log_line("ceiling GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["ceiling_gflops"].items()))
    conv_ceiling = result["ceiling_gflops"]["conv3x3_fp32"]
    for e in entries:
        key = f"{e['name']}/{e['variant']}"
        t256, t512 = timed[sizes[0]][key], timed[sizes[1]][key]
        e["ms_256"], e["ms_512"] = median_ms(t256), median_ms(t512)
        e["ms_256_min"], e["ms_512_min"] = 1e3 * min(t256), 1e3 * min(t512)
        g_timed = e["gflop_256"] * (sizes[0] / 256) ** 2
        e["gflops_achieved"] = g_timed / (e["ms_256"] / 1e3)
        e["ceiling_fraction"] = e["gflops_achieved"] / conv_ceiling
        x = torch.zeros(1, 3, sizes[0], sizes[0], device=device)
        e["peak_mb"] = peak_memory_mb(fns_by_key[key], x)
    result["models"] = entries
    if "memory_share_512" not in result:
        result["memory_share_512"] = None

    # training throughput
    result["train_images_per_s"] = {}
    if train and "moedn" in nets:
        for prof in ("quick", "cpu", "paper"):
            b, c = (2, 32) if quick else profile_batch(prof)
            heavy = prof == "paper" and device.type == "cpu"
            steps = 1 if quick else (2 if heavy else 10)
            log_line(f"training throughput, {prof} profile (batch {b}, crop {c}), {steps} timed steps ...")
            ips = train_throughput(b, c, steps=steps, warmup=1, device=device)
            for p, v in ips.items():
                result["train_images_per_s"][f"{prof}_{p}"] = v
            result["train_images_per_s"][f"{prof}_batch_crop"] = [b, c]
        tq = result["train_images_per_s"]
        for prof in ("quick", "cpu", "paper"):
            if f"{prof}_bf16" in tq:
                tq[f"bf16_speedup_{prof}"] = tq[f"{prof}_bf16"] / tq[f"{prof}_fp32"]

    # PSNR change of the fast path
    result["fast_psnr"] = None
    if psnr and "moedn" in nets:
        root = Path(data_root) if data_root else _default_data_root()
        if quick:
            result["fast_psnr"] = {"skipped": "quick mode"}
        elif root is None or not (root / "DDN-SIRR").is_dir():
            result["fast_psnr"] = {"skipped": f"no DDN-SIRR under {root} (set DATA_ROOT or --data)"}
        else:
            model, what = _psnr_model(checkpoint)
            log_line(f"PSNR of fp32 vs fast ({fast_precision}) on DDN-SIRR test, {what} ...")
            res = psnr_change_vs_fp32(model, _sirr_pairs(root), fast_precision, device)
            result["fast_psnr"] = {"model": what, "data": portable_path(root / "DDN-SIRR", root), **res}
    result["loadavg_end"] = _loadavg()
    busy = (result["loadavg_start"] or [0])[0]  # before this run added its own load
    if device.type == "cpu" and busy > max(os.cpu_count() or 1, threads) - threads + 0.5:
        result["warning"] = (f"the machine was busy (load average {busy:.1f} on {os.cpu_count()} cores, {threads} "
                             f"threads here): parallel regions stall while another job holds a core, so these "
                             f"timings mostly measure the other load; re-run on an idle machine or with --threads 1")
        log_line("warning: " + result["warning"])
    result["targets"] = evaluate_targets(result)
    return result


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages: other jobs on the machine make every timing slower."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


class _MemoryTimer:
    """Forward hooks that time the memory module's calls (seconds per call)."""

    def __init__(self, memory: nn.Module):
        self.enabled, self.calls, self._t0 = False, [], 0.0
        memory.register_forward_pre_hook(self._pre)
        memory.register_forward_hook(self._post)

    def reset(self, enabled: bool) -> None:
        self.enabled, self.calls = enabled, []

    def _pre(self, module, args):
        if self.enabled:
            self._t0 = time.perf_counter()

    def _post(self, module, args, out):
        if self.enabled:
            self.calls.append(time.perf_counter() - self._t0)

    def per_call(self) -> list[float]:
        return list(self.calls)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model with its thread count (recorded beside every timing)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {name} ({torch.get_num_threads()} threads)"


def trace_ops(device="cpu", side: int = 256, rows: int = 12) -> str:
    """torch.profiler tables (self CPU time) of MOEDN fp32 and its fast path, 3 forwards each."""
    from torch.profiler import profile  # lazy: only --trace-ops needs the profiler

    torch.manual_seed(0)
    net = build_model("moedn").eval().to(device)
    x = (torch.rand(1, 3, side, side) * 2 - 1).to(device)
    out = []
    for label, fn in (("fp32 eager", net), ("fast", fast.prepare(net, fast.default_precision(device), device))):
        with torch.no_grad():
            fn(x), fn(x)
            with profile() as prof:
                for _ in range(3):
                    fn(x)
        out.append(f"== MOEDN {label}, {side}x{side} ==\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))
    return "\n".join(out)


# -- command line -------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress goes to stderr)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default %(default)s")
    p.add_argument("--profile", default="quick", help="results folder name results/<profile>/ (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 2 repeats, for tests and CI (numbers not meaningful)")
    p.add_argument("--out", default=None, help="CSV path (default results/<profile>/timing.csv)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per size (default 10; --quick 2)")
    p.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=list(MODEL_NAMES), metavar="NAME",
                   help=f"networks to time (default all: {' '.join(MODEL_NAMES)})")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's current setting)")
    p.add_argument("--data", default=None, help="data root holding DDN-SIRR (default $DATA_ROOT, else ../shared/data)")
    p.add_argument("--checkpoint", default=None, help="model for the PSNR check (default: the shipped model, else untrained)")
    p.add_argument("--no-train", action="store_true", help="skip the training throughput")
    p.add_argument("--no-psnr", action="store_true", help="skip the PSNR check of the fast path")
    p.add_argument("--trace-ops", action="store_true", help="only print torch.profiler tables of MOEDN (where the time goes)")


def run(args) -> int:
    before = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(before)


def _run(args) -> int:
    if args.trace_ops:
        print(trace_ops(args.device))
        return 0
    if args.repeats is not None and args.repeats < 1:
        print("error: --repeats must be >= 1", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    result = measure(args.device, args.quick, tuple(args.models), args.repeats, args.data, args.checkpoint,
                     train=not args.no_train, psnr=not args.no_psnr)
    out = Path(args.out) if args.out else Path("results") / args.profile / "timing.csv"
    result["csv"] = portable_path(write_csv(result, out))
    if args.json:
        print(json.dumps(_finite(result), indent=1, default=str))
    else:
        print(human_report(result))
        print(f"\nwrote {out}")
    return 0


def _finite(o):
    """The result with non-finite floats as None (strict JSON)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o
