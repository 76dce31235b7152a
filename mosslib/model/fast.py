"""Fast inference: :func:`prepare` turns a deraining network into a callable tuned for the device.

``prepare(model, precision="fp32" | "bf16", device="cpu", compile=None)`` returns a callable
(B, 3, H, W) in [-1, 1] -> (B, 3, H, W) fp32 in [-1, 1] with the model in eval mode. The
weights are read once, at ``prepare`` time (prepare again after training further).
:func:`default_precision` is what the commands pick when not told: bf16 only where the device
has native bf16 kernels, else fp32, so the default is never slower than fp32.

For MOEDN on CPU (:class:`FusedMOEDN`): channels_last activations, bf16 weights and activations
(when ``precision="bf16"``), weights prepacked once into oneDNN's blocked layout, and fused
convolutions (``torch.ops.mkldnn._convolution_pointwise``): conv1 + LeakyReLU(0.02) as one call,
conv2 + the residual shortcut as one call, tail conv + tanh as one call. It walks the network
with MOEDN's own :func:`mosslib.model.network.walk`, so the two cannot drift apart. The memory
read (Eq. 4-5) always runs in fp32: it is cheap and its softmax over the cosine similarities is
the part most sensitive to rounding. In fp32 the fused path computes the same function as the
eager model (differences at the 1e-7 level from a different summation order). Other networks
(and MOEDN off CPU) get the generic path: channels_last plus bf16 autocast.

``torch.compile`` is off unless asked for (``compile=True``, with inductor's ``freezing`` on
CPU); when compiling fails the eager path is used, with a warning.
:func:`mosslib.measure.evaluate.psnr_change_vs_fp32` checks the accuracy cost of a prepared
path on image pairs (the bench runs it on DDN-SIRR's 20 test pairs when available). Where the time goes and the measured
speed-ups are in ``docs/speed.md`` (re-made by ``python -m mosslib bench``).
"""
from __future__ import annotations

import copy
import functools
import warnings
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .network import MOEDN, ResidualLayer, pad_to_multiple, walk

__all__ = ["PRECISIONS", "bf16_supported", "native_bf16", "default_precision", "prepare", "FastForward", "FusedMOEDN", "cpu_info", "cpu_flags"]

PRECISIONS = ("fp32", "bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU instructions that compute in bf16 (not just convert)


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
    """What the CPU offers: torch's capability string and the bf16-relevant instruction flags."""
    flags = cpu_flags()
    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
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


def native_bf16(device="cpu") -> bool:
    """Whether ``device`` computes in bf16 natively (CPU: avx512_bf16 or AMX; CUDA: bf16 support).
    oneDNN also runs bf16 on CPUs without these instructions (AVX-512 BW, AVX2), by converting,
    and there it is no faster than fp32."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return bf16_supported(dev) and any(f in cpu_flags() for f in BF16_FLAGS)
    return bf16_supported(dev)


def fused_pays(device="cpu") -> bool:
    """Whether :class:`FusedMOEDN` beats the eager model on ``device``: on CPUs with AVX-512 (its
    fused oneDNN kernels); on AVX2-only CPUs it ran no faster than eager fp32, so fp32 there is
    the eager model itself."""
    return torch.device(device).type == "cpu" and torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def default_precision(device="cpu") -> str:
    """The precision the commands pick when not told: "bf16" where it is native, else "fp32"."""
    return "bf16" if native_bf16(device) else "fp32"


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
        y = walk(
            self.cfg, x,
            head=lambda t: _conv(t, *self.head),
            encoder=[functools.partial(self._layer, spec=spec) for spec in self.encoder],
            read=None if self.memory is None else (lambda z: self.memory.read(z.float()).to(self.dtype)),
            decoder=[functools.partial(self._layer, spec=spec) for spec in self.decoder],
            fuse=None if self.fuse is None else (lambda k, e, t: _conv_add(e, t, *self.fuse[k])),  # t + fuse(e)
            tail=lambda d: _conv(d, *self.tail, "tanh"),
        )
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

    ``precision``: "fp32" or "bf16" (falls back to fp32 with a warning where bf16 is not
    supported). ``compile``: None (default) -> no ``torch.compile`` (it did not pay on CPU);
    True -> try it and fall back to eager with a warning if it fails.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    notes: list[str] = []
    if precision == "bf16" and not bf16_supported(device):
        warnings.warn(f"bf16 is not supported on {device}; using fp32", RuntimeWarning, stacklevel=2)
        notes.append("bf16 unsupported, fp32 used")
        precision = "fp32"
    bf16 = precision == "bf16"
    model = model.eval().to(device)
    fn, path = None, "generic channels_last" + (" + bf16 autocast" if bf16 else "")
    if not bf16 and not compile and device.type == "cpu" and not fused_pays(device):
        return FastForward(model, device, precision, "eager model (fused kernels do not pay on this CPU)", False, notes)
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
