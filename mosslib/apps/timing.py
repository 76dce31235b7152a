"""Measuring speed side by side: interleaved timing rounds, the machine's ceiling (GFLOP/s of a
convolution and a matrix product), work (GFLOP) and peak tensor memory of a forward, and the
training throughput of MOEDN."""
from __future__ import annotations

import statistics
import sys
import time
import weakref
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from ..method.profiles import PROFILES
from ..model import fast
from ..model.baselines import build_model


def log_line(msg: str) -> None:
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


def median_ms(ts: list[float]) -> float:
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
def profile_batch(profile: str) -> tuple[int, int]:
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
