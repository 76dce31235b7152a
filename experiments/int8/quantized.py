"""Int8 inference for MOEDN on CPU (an experiment): oneDNN's VNNI convolutions, calibrated post-training.

:class:`Int8MOEDN` computes MOEDN's eval forward with the encoder, decoder and fusion
convolutions in int8 (weights: symmetric per-output-channel ``qint8``; activations: affine
per-tensor ``quint8``), and the parts that carry the image itself in fp32: the head conv
``s(x)``, the subtraction ``s(x) - g(x)``, the tail conv and ``tanh``. The memory read (Eq. 4-5)
also runs in fp32 on the de-quantised ``z(x)``: its softmax over 512 cosine similarities is the
part most sensitive to rounding, and it is cheap. Bilinear up-sampling runs in fp32 too
(PyTorch's quantized bilinear kernel was 1.3-3x slower than fp32 here). ``float_layers`` keeps
chosen residual layers in bf16 (fp32's range, so no clipping there).

Why int8: on this project's CPU (AMD EPYC, Zen 4: avx512_bf16 and avx512_vnni, no AMX) bf16
can at most double the convolutions' throughput over fp32 (see :mod:`mosslib.model.fast`), while
int8 VNNI convolutions ran 3.3-3.7x faster than fp32 channels_last ones (one 3x3 conv of 32 or
64 channels at 128x128 or 64x64, 1 thread).

Calibration (post-training, no gradient): every quantisation point's range is the central
99.99 % of the fp32 activations over calibration images; by default six rainy *training* images
of the embedded data set (procedural rain on scikit-image's training photographs), never a test
set. One walker (:func:`_walk`) describes the forward once; the fp32 recorder and the int8
executor run the same walk, so the two cannot drift apart (a test checks the walk against
``MOEDN.forward``).

Measured (shipped model, 1 thread, the other core training; when ``mosslib.apps.bench`` still had
an int8 row):

* speed at 256x256: 2.6-2.8x the fp32 eager model (bf16 fused path: 1.7-2.2x in the same runs);
  the int8 convolutions are ~70 % of its time, separate LeakyReLU passes, the fp32
  up-sampling, quantised-tensor allocation and the fp32 head/tail most of the rest;
* accuracy: on 12 Rain100L *training* pairs (development data) -0.22 dB against fp32 outputs
  (1.5 uint8 levels RMS); on DDN-SIRR's test +0.09 dB (changes of either sign per image, up to
  0.35 dB): outside the speed issue's 0.05 dB either way. Worse, on some real photos the late
  encoder and first decoder stages reach 2.5-9x the calibrated ranges (one DDN-SIRR real photo:
  143 pixels off by more than 20 levels, up to 80): static per-tensor ranges are not robust to
  inputs unlike the calibration images. Keeping ``e0`` and the last decoder stage (``d16``-``d19``)
  in float gave -0.08 dB at about 2.1x (measured with them in fp32, before they ran in bf16).

So int8 is not offered by ``derain``, nor by the package: it stays here, outside it, as the measured answer
to "would int8 reach 3x?": not without per-image (dynamic) ranges or quantisation-aware training.
"""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mosslib.data.embedded import ensure
from mosslib.data.imageio import read_rgb
from mosslib.data.images import to_tensor
from mosslib.model.fast import cpu_flags
from mosslib.model.network import MOEDN, pad_to_multiple

__all__ = ["Int8MOEDN", "int8_supported", "int8_why_not", "default_calibration", "prepare_int8"]

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # 8-bit dot products with 32-bit sums (int8 needs one)


def int8_why_not() -> str:
    """Why int8 inference is not offered here ("" when it is): it needs oneDNN's quantized engine
    and a CPU with VNNI (one of :data:`VNNI_FLAGS`).

    Without VNNI, oneDNN sums pairs of u8 x s8 products into int16 with saturation (``vpmaddubsw``;
    oneDNN's guide, "Nuances of int8 computations"), so activations that use the full 8 bits
    overflow: on an AVX2-only AMD EPYC the int8 and fp32 outputs of the shipped model differed by
    26.3 dB PSNR, against more than 38 dB on the VNNI machines.
    """
    if "onednn" not in torch.backends.quantized.supported_engines:
        return "this torch build has no oneDNN quantized engine"
    if not any(f in cpu_flags() for f in VNNI_FLAGS):
        return "this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8): oneDNN's int8 sums saturate without it"
    return ""


def int8_supported() -> bool:
    """Whether int8 inference runs correctly here (see :func:`int8_why_not`)."""
    return not int8_why_not()


@contextlib.contextmanager
def _engine(name: str = "onednn"):
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = old


def default_calibration(n: int = 6, side: int = 128) -> list[torch.Tensor]:
    """``n`` rainy training images of the embedded data set, centre-cropped to ``side``: (1, 3, h, w)."""
    files = sorted((Path(ensure()) / "synthetic" / "train" / "rain").glob("*.png"))[:: 3][:n]
    out = []
    for f in files:
        img = read_rgb(f)
        h, w = img.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        out.append(to_tensor(np.ascontiguousarray(img[top: top + side, left: left + side])).unsqueeze(0))
    return out


# -- one description of the forward, run by two interpreters ----------------------------------
def _walk(model: MOEDN, s, ops):
    """Encoder, memory and decoder (with fusion) on head features ``s``; returns g(x)."""
    n, stages = model.cfg.num_layers, []
    t = ops.enter("s", s)
    for i, layer in enumerate(model.encoder):
        t = ops.layer(f"e{i}", layer, t)
        if (i + 1) % n == 0:
            stages.append((f"e{i}.out", t))  # encoder stage outputs e_0 .. e_{B-1}, for the fusion
    if model.memory is not None:
        t = ops.memory("zhat", model.memory, t)
    for i, layer in enumerate(model.decoder):
        k = i // n
        if model.fuse is not None and i % n == 0 and k >= 1:
            e_name, e = stages[len(stages) - 1 - k]
            t = ops.fuse(f"fuse{k}", f"d{i}", e, e_name, t, model.fuse[k - 1])  # t + fuse(e)
        t = ops.layer(f"d{i}", layer, t)
    return ops.leave(t)


def _layer(name, rl, x, ops):
    if rl.resample == "up":
        x = ops.up(x)
    t = ops.conv(f"{name}.pre", x, rl.conv1, leaky=0.02)
    short = x if isinstance(rl.shortcut, nn.Identity) else ops.conv(f"{name}.sc", x, rl.shortcut)
    y = ops.conv_add(f"{name}.out", t, short, rl.conv2)  # conv2(t) + shortcut
    return ops.pool(y) if rl.resample == "down" else y


class _Recorder:
    """fp32 interpreter of :func:`_walk` that samples each point's values (for its range)."""

    def __init__(self, per_call: int = 100_000):
        self.samples: dict[str, list[torch.Tensor]] = {}
        self.per_call = per_call
        self._gen = torch.Generator().manual_seed(0)

    def _see(self, name, t):
        v = t.detach().float().flatten()
        if v.numel() > self.per_call:
            v = v[torch.randint(0, v.numel(), (self.per_call,), generator=self._gen)]
        self.samples.setdefault(name, []).append(v)
        return t

    def ranges(self, coverage: float) -> dict[str, tuple[float, float]]:
        """Per point: the central ``coverage`` quantile range of the sampled values (1.0: min/max)."""
        out = {}
        for name, parts in self.samples.items():
            v = torch.cat(parts)
            if coverage >= 1.0:
                out[name] = (float(v.min()), float(v.max()))
            else:
                q = torch.quantile(v, torch.tensor([(1 - coverage) / 2, (1 + coverage) / 2]))
                out[name] = (float(q[0]), float(q[1]))
        return out

    def enter(self, name, s):
        return self._see(name, s)

    def layer(self, name, rl, x):
        return _layer(name, rl, x, self)

    def leave(self, t):
        return t

    def conv(self, name, x, conv, leaky=None):
        y = self._see(name, conv(x))
        return F.leaky_relu(y, leaky) if leaky is not None else y

    def conv_add(self, name, x, other, conv):
        return self._see(name, conv(x) + other)

    def memory(self, name, mem, z):
        return self._see(name, mem.read(z))

    def fuse(self, name, consumer, e, e_name, t, conv):
        return self.conv_add(name, e, t, conv)

    def up(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def pool(self, x):
        return F.avg_pool2d(x, 2)


def _qparams(lo: float, hi: float) -> tuple[float, int]:
    """Affine quint8 parameters covering [lo, hi] (and 0, exactly representable)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return scale, int(min(255, max(0, round(-lo / scale))))


def _pack(conv: nn.Conv2d):
    """Prepacked oneDNN int8 weights: symmetric per-output-channel qint8, fp32 bias."""
    w = conv.weight.detach().float()
    scale = (w.abs().amax(dim=(1, 2, 3)) / 127.0).clamp_min(1e-12).double()
    wq = torch.quantize_per_channel(w, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
    bias = None if conv.bias is None else conv.bias.detach().float()
    pad = conv.padding if isinstance(conv.padding, tuple) else (conv.padding,) * 2
    return torch.ops.quantized.conv2d_prepack(wq, bias, [1, 1], list(pad), [1, 1], 1)


class _Int8:
    """int8 interpreter of :func:`_walk` with calibrated parameters and prepacked weights."""

    def __init__(self, qp: dict[str, tuple[float, int]], packed: dict[int, object], order: list[str], float_layers: set[str]):
        self.qp, self.packed, self.float_layers = qp, packed, set(float_layers)
        # a float layer's output is quantised at once when the next layer is an int8 one
        self.requant = {a: b not in self.float_layers for a, b in zip(order, order[1:] + [""]) if a in self.float_layers}

    def _q(self, t, name):
        return torch.quantize_per_tensor(t.contiguous(memory_format=torch.channels_last), *self.qp[name], torch.quint8)

    def enter(self, name, s):
        return s if "e0" in self.float_layers else self._q(s, name)

    def leave(self, t):
        return t.dequantize() if t.is_quantized else t

    def layer(self, name, rl, x):
        if name not in self.float_layers:
            return _layer(name, rl, x, self)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16: fp32's range, so no clipping
            y = rl(x.dequantize() if x.is_quantized else x).float()
        return self._q(y, f"{name}.out") if self.requant.get(name) else y

    def conv(self, name, x, conv, leaky=None):
        y = torch.ops.quantized.conv2d(x, self.packed[id(conv)], *self.qp[name])
        return torch.ops.quantized.leaky_relu(y, leaky, False, *self.qp[name]) if leaky is not None else y

    def conv_add(self, name, x, other, conv):
        return torch.ops.quantized.conv2d_add(x, other, self.packed[id(conv)], *self.qp[name])

    def fuse(self, name, consumer, e, e_name, t, conv):
        if consumer in self.float_layers:  # the decoder stage it feeds runs in float: so does the fusion
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.leave(t) + conv(self.leave(e)).float()
        return self.conv_add(name, e if e.is_quantized else self._q(e, e_name), t, conv)

    def memory(self, name, mem, z):
        zhat = mem.read(z.dequantize())
        return torch.quantize_per_tensor(zhat.contiguous(memory_format=torch.channels_last), *self.qp[name], torch.quint8)

    def up(self, x):
        scale, zp = x.q_scale(), x.q_zero_point()
        y = F.interpolate(x.dequantize(), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.quantize_per_tensor(y.contiguous(memory_format=torch.channels_last), scale, zp, torch.quint8)

    def pool(self, x):
        return F.avg_pool2d(x, 2)


class Int8MOEDN:
    """MOEDN's eval forward with int8 convolutions (CPU, oneDNN): (B, 3, H, W) in [-1, 1] -> fp32 same shape.

    ``calibration``: images (1, 3, h, w) in [-1, 1] whose activations set the int8 ranges
    (default :func:`default_calibration`); ``coverage``: the central fraction of each point's
    calibration values its range spans (rare outliers are clipped, for finer steps);
    ``float_layers``: residual layers (``"e0"`` .. ``"e19"``, ``"d0"`` .. ``"d19"``) run in
    bf16 instead, trading speed for accuracy. The weights are read once, here.
    """

    def __init__(self, model: MOEDN, calibration: Iterable[torch.Tensor] | None = None, float_layers: Iterable[str] = (), coverage: float = 0.9999):
        why = int8_why_not()
        if why:
            raise RuntimeError(f"int8 inference is not available: {why}")
        self.model = model = model.eval()
        images = list(calibration) if calibration is not None else default_calibration()
        if not images:
            raise ValueError("Int8MOEDN: no calibration images")
        rec = _Recorder()
        with torch.no_grad():
            for x in images:
                x, _ = model._pad(x.float())
                _walk(model, model.head(x), rec)
        self.ranges = rec.ranges(coverage)
        qp = {name: _qparams(lo, hi) for name, (lo, hi) in self.ranges.items()}
        convs = [m.conv1 for m in [*model.encoder, *model.decoder]] + [m.conv2 for m in [*model.encoder, *model.decoder]]
        convs += [m.shortcut for m in [*model.encoder, *model.decoder] if isinstance(m.shortcut, nn.Conv2d)]
        convs += list(model.fuse) if model.fuse is not None else []
        order = [f"e{i}" for i in range(len(model.encoder))] + [f"d{i}" for i in range(len(model.decoder))]
        with _engine(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # quantized tensors: deprecated in later torch releases
            self._ops = _Int8(qp, {id(c): _pack(c) for c in convs}, order, set(float_layers))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"MOEDN expects (B, 3, H, W) images in [-1, 1], got shape {tuple(x.shape)}")
        x, (h, w) = pad_to_multiple(x.float(), m.cfg.multiple)
        x = x.contiguous(memory_format=torch.channels_last)
        s = m.head(x)  # fp32: s(x) carries the image to the output through the skip
        with _engine(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            g = _walk(m, s, self._ops)
        y = torch.tanh(m.tail(s - g if m.cfg.use_skip else g))
        return y[..., :h, :w].contiguous()


def prepare_int8(model: nn.Module):
    """:class:`Int8MOEDN` calibrated on :func:`default_calibration` when it applies and agrees with
    the model on a calibration image (max abs difference <= 0.25 in [-1, 1]); else None, with a
    warning saying why (the package's ``fast.prepare`` offered this as ``precision="int8"``)."""
    why = "int8 is implemented for MOEDN on CPU only" if not isinstance(model, MOEDN) else (int8_why_not() or None)
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
    warnings.warn(f"{why}; use mosslib.model.fast.prepare (bf16/fp32)", RuntimeWarning, stacklevel=2)
    return None
