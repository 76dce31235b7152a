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
import statistics
import sys
import time
import weakref
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from ..measure.evaluate import psnr_change_vs_fp32
from ..model import fast
from ..model.baselines import MODEL_NAMES, build_model, count_params
from ..data.layouts import open_dataset
from ..method.checkpoint import load_model, shipped_model_path
from ..method.profiles import PROFILES

__all__ = [
    "TARGETS",
    "add_arguments",
    "run",
    "measure",
    "ceilings",
    "ceiling_work",
    "ceiling_gflops",
    "gflop",
    "peak_memory_mb",
    "time_interleaved",
    "train_throughput",
    "device_name",
    "evaluate_targets",
    "write_csv",
]

# name -> (description, comparison, threshold)
TARGETS = {
    "moedn_vs_prenet_256": ("MOEDN fp32 time / PReNet fp32 time at 256x256", "<=", 0.2),
    "moedn_conv_ceiling": ("MOEDN fp32 GFLOP/s / fp32 conv ceiling", ">=", 0.6),
    "fast_speedup_256": ("MOEDN fp32 time / fast path time at 256x256", ">=", 3.0),
    "fast_psnr_change_db": ("|PSNR(fast) - PSNR(fp32)| on DDN-SIRR test (dB)", "<=", 0.05),
    "train_bf16_speedup_quick": ("training step fp32 time / bf16 autocast time (quick profile)", ">=", 1.5),
    "memory_share_512": ("memory module time / MOEDN fp32 time at 512x512", "<=", 0.05),
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- timing -----------------------------------------------------------------------------------
def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2,
                     device="cpu") -> dict[str, list[float]]:
    """Seconds per call of every function, timed in rounds (one call of each per round)."""
    device = torch.device(device)
    for f in fns.values():
        for _ in range(warmup):
            f()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            f()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    return times


def _median_ms(ts: list[float]) -> float:
    return 1e3 * statistics.median(ts)


# -- machine ceiling ----------------------------------------------------------------------------
def ceiling_work(device="cpu", quick: bool = False) -> dict[str, tuple[Callable[[], object], float]]:
    """``{name: (fn, flop)}``: a 64->64 3x3 conv at 256^2 (NCHW and channels_last) and a 2048^2
    matmul in fp32, plus their bf16 versions where bf16 is supported (tiny sizes when ``quick``)."""
    device = torch.device(device)
    side, ch, n = (64, 16, 256) if quick else (256, 64, 2048)
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(ch, ch, 3, padding=1).eval().to(device)
    x = torch.randn(1, ch, side, side, generator=gen).to(device)
    conv_cl = nn.Conv2d(ch, ch, 3, padding=1).eval().to(device).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    conv_flop, mm_flop = 2 * ch * ch * 9 * side * side, 2 * n**3
    work = {"conv3x3_fp32_nchw": (lambda: conv(x), conv_flop), "conv3x3_fp32_nhwc": (lambda: conv_cl(x_cl), conv_flop),
            "matmul_fp32": (lambda: a @ b, mm_flop)}
    if fast.bf16_supported(device):
        a16, b16 = a.bfloat16(), b.bfloat16()
        conv16 = nn.Conv2d(ch, ch, 3, padding=1).eval().to(device).to(torch.bfloat16).to(memory_format=torch.channels_last)
        x16 = x_cl.bfloat16()
        work |= {"conv3x3_bf16": (lambda: conv16(x16), conv_flop), "matmul_bf16": (lambda: a16 @ b16, mm_flop)}
    return work


def ceiling_gflops(work: dict, times: dict[str, list[float]]) -> dict[str, float]:
    """GFLOP/s from median times; ``conv3x3_fp32`` is the better of the two layouts."""
    out = {k: flop / statistics.median(times[k]) / 1e9 for k, (_, flop) in work.items()}
    out["conv3x3_fp32"] = max(out["conv3x3_fp32_nchw"], out["conv3x3_fp32_nhwc"])
    return out


def ceilings(device="cpu", quick: bool = False, repeats: int = 10) -> dict[str, float]:
    """The machine's ceiling alone (GFLOP/s); :func:`measure` times it interleaved with the networks."""
    work = ceiling_work(device, quick)
    with torch.no_grad():
        t = time_interleaved({k: fn for k, (fn, _) in work.items()}, repeats, warmup=1 if quick else 2, device=device)
    return ceiling_gflops(work, t)


# -- work and memory ----------------------------------------------------------------------------
def gflop(model: nn.Module, side: int = 256, device="cpu") -> float:
    """GFLOP of one (1, 3, side, side) forward, as FlopCounterMode counts them (conv and matmul)."""
    x = torch.zeros(1, 3, side, side, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() / 1e9


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created inside the mode and alive, and their peak."""

    def __init__(self):
        super().__init__()
        self.live, self.peak = 0, 0
        self.refs: dict[int, int] = {}

    def _free(self, ptr: int, nbytes: int) -> None:
        self.refs[ptr] -= 1
        if self.refs[ptr] == 0:
            del self.refs[ptr]
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta" and t.layout == torch.strided:
                st = t.untyped_storage()
                ptr, nbytes = st.data_ptr(), st.nbytes()
                if nbytes == 0:
                    continue
                if ptr not in self.refs:
                    self.refs[ptr] = 0
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
                self.refs[ptr] += 1
                weakref.finalize(t, self._free, ptr, nbytes)
        return out


def peak_memory_mb(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> float:
    """Peak MB of memory allocated during ``fn(x)`` (CUDA: the allocator's peak; CPU: live tensors).

    On CPU the peak is that of tensors created by the forward and alive at once (activations and
    outputs; weights, the input and oneDNN's internal scratch space excluded).
    """
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        base = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        with torch.no_grad():
            fn(x)
        torch.cuda.synchronize(x.device)
        return (torch.cuda.max_memory_allocated(x.device) - base) / 2**20
    mode = _LiveBytes()
    with torch.no_grad(), mode:
        y = fn(x)
    del y
    return mode.peak / 2**20


# -- training throughput ------------------------------------------------------------------------
def _profile_batch(profile: str) -> tuple[int, int]:
    """(batch size, crop) of a training profile (mosslib.method.profiles), with the issue's defaults."""
    defaults = {"quick": (4, 64), "paper": (16, 256)}
    try:
        data = PROFILES[profile].get("data", {})
        b, c = defaults.get(profile, (4, 64))
        return int(data.get("batch_size", b)), int(data.get("crop", c))
    except (ImportError, KeyError):
        return defaults.get(profile, (4, 64))


def train_throughput(batch: int, crop: int, precisions=("fp32", "bf16"), steps: int = 5, warmup: int = 1,
                     device="cpu") -> dict[str, float]:
    """Images/s of MOEDN supervised steps (forward, L1, backward, Adam) per precision, interleaved."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, crop, crop, generator=gen) * 2 - 1).to(device)
    y = (torch.rand(batch, 3, crop, crop, generator=gen) * 2 - 1).to(device)
    fns = {}
    for p in precisions:
        if p == "bf16" and not fast.bf16_supported(device):
            continue
        torch.manual_seed(0)
        model = build_model("moedn").to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, opt=opt, bf16=(p == "bf16")):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x).float()
            loss = F.l1_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        fns[p] = step
    t = time_interleaved(fns, steps, warmup=warmup, device=device)
    return {p: batch / statistics.median(v) for p, v in t.items()}


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
        return load_model(checkpoint), f"checkpoint {checkpoint}"
    if shipped_model_path().is_file():
        return load_model(), f"shipped model {shipped_model_path()}"
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
    _log(f"bench: {device}, {threads} threads, sizes {sizes}, {repeats} repeats"
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
        _log(f"timing {len(fns)} forwards at {side}x{side}, {repeats} rounds ...")
        with torch.no_grad():
            timed[side] = time_interleaved(fns, repeats, warmup=1 if quick else 2, device=device)
        if mem_hook is not None and side == sizes[1]:
            totals = timed[side]["moedn/fp32"]
            mem = mem_hook.per_call()[-len(totals):]
            result["memory_share_512"] = statistics.median(m / t for m, t in zip(mem, totals))
            mem_hook.reset(enabled=False)
    result["ceiling_gflops"] = ceiling_gflops(work, {k: timed[sizes[0]][f"ceiling/{k}"] for k in work})
    _log("ceiling GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["ceiling_gflops"].items()))
    conv_ceiling = result["ceiling_gflops"]["conv3x3_fp32"]
    for e in entries:
        key = f"{e['name']}/{e['variant']}"
        t256, t512 = timed[sizes[0]][key], timed[sizes[1]][key]
        e["ms_256"], e["ms_512"] = _median_ms(t256), _median_ms(t512)
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
            b, c = (2, 32) if quick else _profile_batch(prof)
            heavy = prof == "paper" and device.type == "cpu"
            steps = 1 if quick else (2 if heavy else 10)
            _log(f"training throughput, {prof} profile (batch {b}, crop {c}), {steps} timed steps ...")
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
            _log(f"PSNR of fp32 vs fast ({fast_precision}) on DDN-SIRR test, {what} ...")
            res = psnr_change_vs_fp32(model, _sirr_pairs(root), fast_precision, device)
            result["fast_psnr"] = {"model": what, "data": str(root / "DDN-SIRR"), **res}
    result["loadavg_end"] = _loadavg()
    busy = (result["loadavg_start"] or [0])[0]  # before this run added its own load
    if device.type == "cpu" and busy > max(os.cpu_count() or 1, threads) - threads + 0.5:
        result["warning"] = (f"the machine was busy (load average {busy:.1f} on {os.cpu_count()} cores, {threads} "
                             f"threads here): parallel regions stall while another job holds a core, so these "
                             f"timings mostly measure the other load; re-run on an idle machine or with --threads 1")
        _log("warning: " + result["warning"])
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
    import platform

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


# -- targets ------------------------------------------------------------------------------------
def evaluate_targets(result: dict) -> dict:
    """``{name: {"value", "threshold", "op", "pass", "what"}}``; value None when not measured."""
    rows = {(m["name"], m["variant"]): m for m in result.get("models", [])}
    moedn, prenet, fastm = rows.get(("moedn", "fp32")), rows.get(("prenet", "fp32")), rows.get(("moedn", "fast"))
    values = {
        "moedn_vs_prenet_256": moedn["ms_256"] / prenet["ms_256"] if moedn and prenet else None,
        "moedn_conv_ceiling": moedn["ceiling_fraction"] if moedn else None,
        "fast_speedup_256": moedn["ms_256"] / fastm["ms_256"] if moedn and fastm else None,
        "fast_psnr_change_db": None,
        "train_bf16_speedup_quick": (result.get("train_images_per_s") or {}).get("bf16_speedup_quick"),
        "memory_share_512": result.get("memory_share_512"),
    }
    fp = result.get("fast_psnr") or {}
    if "delta_db" in fp:
        values["fast_psnr_change_db"] = abs(fp["delta_db"])
    out = {}
    for name, (what, op, thr) in TARGETS.items():
        v = values[name]
        ok = None if v is None else (v <= thr if op == "<=" else v >= thr)
        out[name] = {"value": v, "op": op, "threshold": thr, "pass": ok, "what": what}
    # the same ratios from the fastest of the repeats (less sensitive to other load on the machine)
    if moedn and prenet:
        out["moedn_vs_prenet_256"]["value_min"] = moedn["ms_256_min"] / prenet["ms_256_min"]
    if moedn and fastm:
        out["fast_speedup_256"]["value_min"] = moedn["ms_256_min"] / fastm["ms_256_min"]
    return out


def target_lines(targets: dict) -> list[str]:
    lines = []
    for name, t in targets.items():
        if t["value"] is None:
            lines.append(f"SKIP  {name}: not measured ({t['what']})")
            continue
        extra = f", fastest-run ratio {t['value_min']:.3f}" if "value_min" in t else ""
        lines.append(f"{'PASS' if t['pass'] else 'FAIL'}  {name}: {t['value']:.3f} {t['op']} {t['threshold']} "
                     f"({t['what']}{extra})")
    return lines


# -- output -------------------------------------------------------------------------------------
CSV_COLUMNS = ("arch", "name", "variant", "device", "threads", "size", "params", "gflop_256", "ms", "ms_512", "ms_min",
               "ms_512_min", "peak_mb", "gflops_achieved", "ceiling_fraction")


def write_csv(result: dict, path: str | os.PathLike) -> Path:
    """``timing.csv``: one row per network and variant (``arch``, ``ms`` per image of ``size``^2 -
    256 normally, 32 with ``--quick`` - ``ms_512`` at twice that side, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        ceil = result["ceiling_gflops"]
        fh.write(f"# mosslib bench: {result['device']}, torch {result['torch']}, sizes {result['sizes']}, "
                 f"{result['repeats']} repeats{' (quick mode)' if result.get('quick') else ''}, load average "
                 f"{result.get('loadavg_start')} -> {result.get('loadavg_end')}\n")
        fh.write(f"# ceiling GFLOP/s: conv3x3_fp32 {ceil['conv3x3_fp32']:.1f}, matmul_fp32 {ceil['matmul_fp32']:.1f}\n")
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for m in result["models"]:
            arch = _arch_name(m)
            w.writerow([arch, m["name"], m["variant"], result["device"], result["threads"], result["sizes"][0], m["params"],
                        f"{m['gflop_256']:.3f}", f"{m['ms_256']:.2f}", f"{m['ms_512']:.2f}", f"{m['ms_256_min']:.2f}",
                        f"{m['ms_512_min']:.2f}", f"{m['peak_mb']:.1f}", f"{m['gflops_achieved']:.1f}",
                        f"{m['ceiling_fraction']:.3f}"])
    os.replace(tmp, path)
    return path


def _arch_name(m: dict) -> str:
    """``moedn``, ``moedn-fast-bf16``: one name per row of the CSV."""
    if m["variant"] == "fp32":
        return m["name"]
    parts = [m["name"], m["variant"]] + ([m["precision"]] if m.get("precision") not in (None, "", m["variant"]) else [])
    return "-".join(parts)


def human_report(result: dict) -> str:
    s0, s1 = result["sizes"]
    lines = [f"device: {result['device']}, torch {result['torch']}, CPU capability {result['cpu']['capability']}"
             f"{', avx512_bf16' if result['cpu'].get('avx512_bf16') else ''}; load average at start "
             f"{result.get('loadavg_start')}, at end {result.get('loadavg_end')}",
             "ceiling GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["ceiling_gflops"].items()), ""]
    head = f"{'network':8s} {'variant':8s} {'params':>9s} {'GFLOP256':>8s} {f'ms@{s0}':>9s} {f'ms@{s1}':>9s} " \
           f"{'min@' + str(s0):>9s} {'peak MB':>8s} {'GFLOP/s':>8s} {'ceil%':>6s}"
    lines.append(head)
    for m in result["models"]:
        lines.append(f"{m['name']:8s} {m['variant']:8s} {m['params']:9d} {m['gflop_256']:8.2f} {m['ms_256']:9.1f} "
                     f"{m['ms_512']:9.1f} {m['ms_256_min']:9.1f} {m['peak_mb']:8.1f} {m['gflops_achieved']:8.1f} "
                     f"{100 * m['ceiling_fraction']:6.1f}")
    if result.get("memory_share_512") is not None:
        lines.append(f"\nmemory module share of MOEDN fp32 time at {s1}x{s1}: {100 * result['memory_share_512']:.2f} %")
    if result.get("train_images_per_s"):
        lines.append("training images/s: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in result["train_images_per_s"].items()))
    fp = result.get("fast_psnr")
    if fp:
        if "delta_db" in fp:
            lines.append(f"fast path PSNR on DDN-SIRR ({fp['n']} images, {fp['model']}): fp32 {fp['psnr_fp32']:.3f} dB, "
                         f"fast {fp['psnr_fast']:.3f} dB, change {fp['delta_db']:+.4f} dB (largest per image "
                         f"{fp['max_abs_delta_db']:.4f}), max pixel difference {fp['max_pixel_diff']}")
        else:
            lines.append(f"fast path PSNR check skipped: {fp.get('skipped')}")
    if result.get("warning"):
        lines.append(f"WARNING: {result['warning']}")
    lines.append("")
    lines += target_lines(result["targets"])
    return "\n".join(lines)


def trace_ops(device="cpu", side: int = 256, rows: int = 12) -> str:
    """torch.profiler tables (self CPU time) of MOEDN fp32 and its fast path, 3 forwards each."""
    from torch.profiler import profile

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
    result["csv"] = str(write_csv(result, out))
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
