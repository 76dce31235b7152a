"""Fast inference: :func:`prepare` turns a deraining network into a callable tuned for the device.

``prepare(model, precision="fp32" | "bf16" | "int8", device="cpu", compile=None)`` returns a callable
(B, 3, H, W) in [-1, 1] -> (B, 3, H, W) fp32 in [-1, 1] with the model in eval mode. The
weights are read once, at ``prepare`` time (prepare again after training further).

Where the time goes (torch.profiler and per-layer timings; MOEDN, one 256x256 image; CPU time
of 1 thread, min of 8 runs, on the project's AMD EPYC (Zen 4, AVX-512 with avx512_bf16, no AMX);
the 2 cores were shared with other jobs, so wall-clock numbers were noisier):

* eager fp32 in NCHW (before): 394-417 ms, about 90 % in the 92 oneDNN convolutions, which
  reorder every input and output between NCHW and oneDNN's blocked layout; the residual
  additions 3-6 %, LeakyReLU, pooling and up-sampling 1-2 % each, the memory read about 1 %.
* eager fp32 in channels_last (``MOEDN.forward`` now does this on CPU): 337-351 ms.
* this module's fused fp32 path: 295 ms; fused bf16: 142-147 ms (2.3-2.4x the channels_last
  eager model, about 2.8x the NCHW one). In bf16, 95 % of the time is the convolutions, running
  at about 210 GFLOP/s per core, which is this CPU's bf16 peak (64 FLOP/cycle/core with
  avx512_bf16); fp32 convolutions run at 105-110 GFLOP/s per core, also at peak (32
  FLOP/cycle). So bf16 can at most halve the convolution time here: a 3x speed-up over a
  well-laid-out fp32 model is out of reach on this CPU without changing the network. int8
(``precision="int8"``, :mod:`mosslib.model.quantized`, VNNI convolutions at 3.3-3.7x fp32) reached
2.6-2.8x, at an accuracy cost beyond the 0.05 dB budget and with artifacts on some real photos,
so ``derain`` does not offer it.

What this module does for MOEDN on CPU (:class:`FusedMOEDN`): channels_last activations, bf16
weights and activations (when ``precision="bf16"``), weights prepacked once into oneDNN's
blocked layout, and fused convolutions (``torch.ops.mkldnn._convolution_pointwise``):
conv1 + LeakyReLU(0.02) as one call, conv2 + the residual shortcut as one call, tail conv + tanh
as one call. The memory read (Eq. 4-5) always runs in fp32: it is cheap and its softmax over 512
cosine similarities is the part most sensitive to rounding. In fp32 the fused path computes the
same function as the eager model (differences at the 1e-7 level from a different summation
order). Other networks (and MOEDN off CPU) get the generic path: channels_last plus bf16
autocast.

``torch.compile`` is off unless asked for (``compile=True``, with inductor's ``freezing`` on
CPU). With freezing it matched the fused path (fp32 301 ms, bf16 autocast 144 ms, 1 thread)
after 25-30 s of compiling per input shape; without freezing its convolutions ran several times
slower than eager; with 2 threads on the shared machine it was slower than eager. So it does
not pay here. When compiling fails the eager path is used, with a warning.
:func:`psnr_change_vs_fp32` checks the accuracy cost of a prepared path on image pairs (the
bench runs it on DDN-SIRR's 20 test pairs when available).
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .network import MOEDN, ResidualLayer, pad_to_multiple

__all__ = ["PRECISIONS", "VNNI_FLAGS", "bf16_supported", "prepare", "FastForward", "FusedMOEDN", "psnr_change_vs_fp32", "cpu_info", "cpu_flags"]

PRECISIONS = ("fp32", "bf16", "int8")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # 8-bit dot products with 32-bit sums (int8 needs one)


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_info() -> dict:
    """What the CPU offers: torch's capability string and the bf16 / int8-relevant instruction flags."""
    flags = cpu_flags()
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "vnni": any(f in flags for f in VNNI_FLAGS),
        "mkldnn_bf16": bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
    }


def bf16_supported(device="cpu") -> bool:
    """Whether bf16 kernels exist for ``device`` (CPU: oneDNN bf16, i.e. AVX-512 BW or newer)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


# -- the fused MOEDN path ---------------------------------------------------------------------
_ONE = [1, 1]


def _conv(x, w, b, attr="none", scalars=()):
    pad = [w.shape[-1] // 2] * 2  # 3x3 -> 1, 1x1 -> 0 (prepacked weights keep their logical shape)
    return torch.ops.mkldnn._convolution_pointwise(x, w, b, pad, _ONE, _ONE, 1, attr, list(scalars), "")


def _conv_add(x, other, w, b):
    """conv(x) + other in one oneDNN call (a sum post-op)."""
    pad = [w.shape[-1] // 2] * 2
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, w, b, pad, _ONE, _ONE, 1, "add", 1.0, None, [], None)


class FusedMOEDN:
    """MOEDN's eval forward with fused oneDNN convolutions, channels_last, in fp32 or bf16 (CPU).

    Same function as ``MOEDN.forward`` in eval mode (pad to a multiple, head, encoder, memory
    read, decoder, ``tail(s - g)``, tanh, crop); (B, 3, H, W) in [-1, 1] -> fp32 same shape.
    """

    def __init__(self, model: MOEDN, dtype: torch.dtype = torch.float32, prepack: bool = True):
        self.cfg, self.dtype, self.prepacked = model.cfg, dtype, prepack

        def w(conv: nn.Conv2d):
            weight = conv.weight.detach().to(dtype, copy=True).contiguous(memory_format=torch.channels_last)
            bias = None if conv.bias is None else conv.bias.detach().to(dtype, copy=True)
            if prepack:  # oneDNN's blocked weight layout, once, instead of a reorder in every call
                pad = [weight.shape[-1] // 2] * 2
                weight = torch.ops.mkldnn._reorder_convolution_weight(weight, pad, _ONE, _ONE, 1, None)
            return weight, bias

        def layer(rl: ResidualLayer):
            sc = None if isinstance(rl.shortcut, nn.Identity) else w(rl.shortcut)
            return (rl.resample, w(rl.conv1), w(rl.conv2), sc)

        self.head = w(model.head)
        self.encoder = [layer(m) for m in model.encoder]
        self.decoder = [layer(m) for m in model.decoder]
        self.tail = w(model.tail)
        self.fuse = None if getattr(model, "fuse", None) is None else [w(c) for c in model.fuse]
        # a copy, read in fp32 (Eq. 4-5); eval mode only reads
        self.memory = None if model.memory is None else copy.deepcopy(model.memory).eval().float()

    def _layer(self, x, spec):
        resample, (w1, b1), (w2, b2), sc = spec
        if resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        t = _conv(x, w1, b1, "leaky_relu", [0.02])
        short = x if sc is None else _conv(x, *sc)
        y = _conv_add(t, short, w2, b2)
        if resample == "down":
            y = F.avg_pool2d(y, 2)
        return y

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"MOEDN expects (B, 3, H, W) images in [-1, 1], got shape {tuple(x.shape)}")
        x, (h, w) = pad_to_multiple(x.float(), self.cfg.multiple)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        s = _conv(x, *self.head)
        n, stages = self.cfg.num_layers, []
        z = s
        for i, spec in enumerate(self.encoder):
            z = self._layer(z, spec)
            if (i + 1) % n == 0:
                stages.append(z)  # encoder stage outputs, for the fusion convs
        if self.memory is not None:
            z = self.memory.read(z.float()).to(self.dtype)
        g = z
        for i, spec in enumerate(self.decoder):
            k = i // n
            if self.fuse is not None and i % n == 0 and k >= 1:
                g = _conv_add(stages[len(stages) - 1 - k], g, *self.fuse[k - 1])  # g + fuse(e)
            g = self._layer(g, spec)
        d = s - g if self.cfg.use_skip else g
        y = _conv(d, *self.tail, "tanh")
        return y[..., :h, :w].float().contiguous()


# -- prepare ----------------------------------------------------------------------------------
class FastForward:
    """The callable :func:`prepare` returns; ``describe()`` says which path it uses."""

    def __init__(self, fn: Callable, device: torch.device, precision: str, path: str, compiled: bool, notes: list[str]):
        self._fn, self.device, self.precision, self.path, self.compiled, self.notes = fn, device, precision, path, compiled, notes

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = self._fn(x.to(self.device))
        return y.float().contiguous()

    def describe(self) -> str:
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.path}, {self.precision}, {'compiled' if self.compiled else 'eager'} on {self.device}{extra}"


def _generic(model: nn.Module, device: torch.device, bf16: bool) -> Callable:
    """channels_last input (oneDNN then keeps NHWC throughout) and, for bf16, autocast."""

    def fn(x):
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    return fn


def _agrees(fn: Callable, model: nn.Module, device: torch.device, tol: float) -> bool:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, 19, 21, generator=gen) * 2 - 1).to(device)
    with torch.no_grad():
        ref = model(x).float()
        got = fn(x).float()
    return got.shape == ref.shape and bool(torch.isfinite(got).all()) and float((got - ref).abs().max()) <= tol


def prepare(model: nn.Module, precision: str = "fp32", device="cpu", compile: bool | None = None) -> FastForward:
    """A fast callable for ``model``: (B, 3, H, W) in [-1, 1] -> fp32 (B, 3, H, W); model put in eval mode.

    ``precision``: "fp32", "bf16" (falls back to fp32 with a warning where bf16 is not
    supported) or "int8" (MOEDN on CPU only, :class:`mosslib.model.quantized.Int8MOEDN`, calibrated on
    embedded training images; falls back to bf16 or fp32 with a warning elsewhere). ``compile``: None (default) -> no ``torch.compile`` (it does not pay on CPU here);
    True -> try it and fall back to eager with a warning if it fails.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    notes: list[str] = []
    if precision == "int8":
        int8 = _int8_path(model, device, notes)
        if int8 is not None:
            return FastForward(int8, device, "int8", "int8 oneDNN MOEDN (calibrated)", False, notes)
        precision = "bf16"
    if precision == "bf16" and not bf16_supported(device):
        warnings.warn(f"bf16 is not supported on {device}; using fp32", RuntimeWarning, stacklevel=2)
        notes.append("bf16 unsupported, fp32 used")
        precision = "fp32"
    bf16 = precision == "bf16"
    model = model.eval().to(device)
    fn, path = None, "generic channels_last" + (" + bf16 autocast" if bf16 else "")
    if isinstance(model, MOEDN) and device.type == "cpu" and torch.backends.mkldnn.is_available() and not compile:
        for prepack in (True, False):
            try:
                fused = FusedMOEDN(model, torch.bfloat16 if bf16 else torch.float32, prepack=prepack)
                if _agrees(fused, model, device, tol=0.1 if bf16 else 1e-4):
                    fn, path = fused, "fused oneDNN MOEDN" + (" (prepacked weights)" if prepack else "")
                    break
                notes.append(f"fused path (prepack={prepack}) disagreed with the model")
            except (RuntimeError, NotImplementedError) as exc:  # an op missing in this torch build
                notes.append(f"fused path (prepack={prepack}) unavailable ({type(exc).__name__}: {exc})")
        if fn is None:
            notes.append("generic path used")
    if fn is None:
        fn = _generic(model, device, bf16)
    compiled = False
    if compile:
        try:
            # freezing: constant weights folded and prepacked; without it inductor's CPU convs were slow here
            cfn = torch.compile(fn, options={"freezing": True} if device.type == "cpu" else None)
            if not _agrees(cfn, model, device, tol=0.1 if bf16 else 1e-4):
                raise RuntimeError("compiled output disagrees with the model")
            fn, compiled = cfn, True
        except Exception as exc:  # torch.compile can fail in many ways; eager still works
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); using eager", RuntimeWarning, stacklevel=2)
            notes.append("torch.compile failed, eager used")
    return FastForward(fn, device, precision, path, compiled, notes)


def _int8_path(model: nn.Module, device: torch.device, notes: list[str]):
    """:class:`~mosslib.model.quantized.Int8MOEDN` when it applies and agrees with the model on a
    calibration image (max abs difference <= 0.25 in [-1, 1]); else None, with a warning."""
    from .quantized import Int8MOEDN, default_calibration, int8_why_not

    why = None
    if not isinstance(model, MOEDN) or device.type != "cpu":
        why = "int8 is implemented for MOEDN on CPU only"
    else:
        why = int8_why_not() or None
    if why is None:
        try:
            calib = default_calibration()
            q = Int8MOEDN(model.eval(), calib)
            with torch.no_grad():
                err = float((q(calib[0]) - model(calib[0])).abs().max())
            if err <= 0.25:
                return q
            why = f"int8 output disagreed with the model (max abs difference {err:.3f})"
        except (RuntimeError, NotImplementedError) as exc:
            why = f"int8 path unavailable ({type(exc).__name__}: {exc})"
    warnings.warn(f"{why}; using bf16/fp32", RuntimeWarning, stacklevel=3)
    notes.append(why)
    return None


# -- accuracy check ---------------------------------------------------------------------------
def _as_pair(p) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(p, "load"):
        return p.load()
    rainy, clean = p
    return np.asarray(rainy), np.asarray(clean)


def _to_input(img: np.ndarray) -> torch.Tensor:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"pairs must hold uint8 (H, W, 3) images, got {img.dtype} {img.shape}")
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def psnr_change_vs_fp32(model: nn.Module, pairs: Iterable, precision: str = "bf16", device="cpu",
                        fast: Callable | None = None) -> dict:
    """PSNR (RGB convention) of the fp32 model and of its fast path on (rainy, clean) pairs.

    ``pairs``: ``mosslib.data.layouts.Pair`` objects or (rainy, clean) uint8 (H, W, 3) arrays. Returns
    ``{"n", "psnr_fp32", "psnr_fast", "delta_db", "max_abs_delta_db", "max_pixel_diff"}`` where
    ``delta_db`` = mean PSNR(fast) - mean PSNR(fp32) and ``max_pixel_diff`` is in uint8 levels.
    """
    from ..measure.metrics import psnr

    model = model.eval().to(device)
    fast = fast or prepare(model, precision, device)
    ref_scores, fast_scores, max_diff = [], [], 0
    for p in pairs:
        rainy, clean = _as_pair(p)
        x = _to_input(rainy).to(device)
        with torch.no_grad():
            y_ref = model(x).float().cpu()
        y_fast = fast(x).cpu()
        a = ((y_ref[0] + 1) / 2).clamp(0, 1)
        b = ((y_fast[0] + 1) / 2).clamp(0, 1)
        ref_scores.append(psnr(a, clean))
        fast_scores.append(psnr(b, clean))
        max_diff = max(max_diff, int((torch.round(a * 255) - torch.round(b * 255)).abs().max()))
    if not ref_scores:
        raise ValueError("psnr_change_vs_fp32: no pairs given")
    finite = [(r, f) for r, f in zip(ref_scores, fast_scores) if math.isfinite(r) and math.isfinite(f)]
    return {
        "n": len(ref_scores),
        "psnr_fp32": float(np.mean([r for r, _ in finite])),
        "psnr_fast": float(np.mean([f for _, f in finite])),
        "delta_db": float(np.mean([f for _, f in finite]) - np.mean([r for r, _ in finite])),
        "max_abs_delta_db": float(max(abs(f - r) for r, f in finite)),
        "max_pixel_diff": max_diff,
        "path": fast.describe() if hasattr(fast, "describe") else str(fast),
    }
