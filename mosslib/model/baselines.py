"""Baseline deraining networks of the paper's comparison (Table 1, Fig. 8), written from their papers.

Every network maps (B, 3, H, W) images in [-1, 1] to the derained image in [-1, 1], same shape,
for any H, W (networks with down-sampling pad inside and crop back), so each can be trained by
the project's trainer as a supervised peer (``python -m mosslib train --model prenet``).

* ``prenet`` - PReNet (Ren et al., CVPR 2019): 6 recurrent stages sharing weights; a stage is
  conv(6 -> 32) + ReLU, a ConvLSTM (32), 5 residual blocks, conv(32 -> 3), added to the rainy
  input; works in [0, 1] internally like the paper.
* ``ddn`` - DDN (Fu et al., CVPR 2017): a guided filter (radius 15, eps 1) splits off the base
  layer; a 26-layer ResNet (16 channels, batch norm) maps the detail layer to the negative rain
  residual, which is added to the input.
* ``didmdn`` - DID-MDN's generator (Zhang and Patel, CVPR 2018): three densely connected
  streams with 7x7, 5x5 and 3x3 kernels (3/2/1 down-sampling levels), fused with the input and
  a rain-density label map into a residual, then a pyramid-pooling refinement.
* ``umrl`` - UMRL (Yasarla and Patel, CVPR 2019): an encoder-decoder of dense blocks estimating
  the rain residual at 1/4, 1/2 and full scale, each coarse residual weighted by a confidence
  map before it guides the next scale; a shared residual and a shared confidence head.
* ``moedn`` - the project's MOEDN (:mod:`mosslib.model.network`).

On CPU every network runs in channels_last memory format inside ``forward`` (as MOEDN does), so
the timing comparison treats all alike.

Deviations, written down: PReNet and DDN clamp their output to [-1, 1] in eval mode only (the
papers add a residual with no bound; clamping in training would zero gradients). DID-MDN's
separately trained residual-aware density classifier (3 classes; its labels are not in our data)
is replaced by a small density head trained end to end whose soft label map is concatenated as
in the paper; its growth rates (12, 12, 16) and stream width 20 were chosen to land near the
public definition's size and work. UMRL's layer sizes are ours, chosen the same way.

Parameters (GFLOP per 256x256 forward) against the public definitions (:data:`PUBLISHED_PARAMS`,
:func:`param_report`): PReNet 168,963, exactly (132.5 GFLOP, exactly); DDN 57,369, -1.1 %
(7.36 vs 7.4); DID-MDN 365,121, -1.9 % (14.9 vs 14.5, +2.8 %); UMRL 930,436, -5.4 % (30.2);
MOEDN 2,827,507, -1.0 % against the release (18.6 vs 19.8 GFLOP), its encoder-to-decoder fusion
being ours (``ModelConfig.fuse``); paper-strict, without fusion, 2,702,867 (17.95 GFLOP).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .network import MOEDN, pad_to_multiple

__all__ = [
    "MODEL_NAMES",
    "PUBLISHED_PARAMS",
    "PUBLISHED_GFLOP_256",
    "build_model",
    "count_params",
    "param_report",
    "PReNet",
    "DDN",
    "DIDMDN",
    "UMRL",
    "guided_filter",
]

MODEL_NAMES = ("moedn", "prenet", "ddn", "didmdn", "umrl")

# Published parameter counts (millions) and where they come from.
PUBLISHED_PARAMS: dict[str, tuple[float, str]] = {
    "prenet": (0.169, "PReNet public definition, 168,963 (docs/release.md: 0.17 M)"),
    "ddn": (0.058, "DDN public definition (docs/release.md: 0.06 M)"),
    "didmdn": (0.372, "DID-MDN generator, public definition (docs/release.md: 0.37 M)"),
    "umrl": (0.984, "UMRL public definition (about 0.98 M counted from it; 0.984 M as tabulated in MSPFN, CVPR 2020)"),
    "moedn": (2.856, "MOSS release with its fuse blocks (docs/release.md: 2,855,939); ours omits them"),
}
# GFLOP per 256x256 forward of the public definitions, measured (docs/release.md)
PUBLISHED_GFLOP_256: dict[str, float] = {"prenet": 132.5, "ddn": 7.4, "didmdn": 14.5, "moedn": 19.8}


def _to01(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * 0.5


def _from01(y: torch.Tensor) -> torch.Tensor:
    return y * 2.0 - 1.0


def _check_input(name: str, x: torch.Tensor) -> torch.Tensor:
    """Validate (B, 3, H, W); on CPU return it in channels_last (oneDNN's layout, as MOEDN does)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} expects (B, 3, H, W) images in [-1, 1], got shape {tuple(x.shape)}")
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


# -- PReNet -----------------------------------------------------------------------------------
class ConvLSTMCell(nn.Module):
    """Convolutional LSTM: one 3x3 conv of [x, h] gives the i, f, g, o gates. (B, C, H, W) states."""

    def __init__(self, cin: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = self.gates(torch.cat([x, h], 1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class PReNet(nn.Module):
    """Progressive recurrent network: ``stages`` passes of one shared stage, (B, 3, H, W) -> same."""

    def __init__(self, stages: int = 6, channels: int = 32, blocks: int = 5):
        super().__init__()
        self.stages, self.channels = stages, channels
        self.f_in = nn.Sequential(nn.Conv2d(6, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.f_recurrent = ConvLSTMCell(channels, channels)
        self.f_res = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
            )
            for _ in range(blocks)
        )
        self.f_out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _to01(_check_input("PReNet", x))
        b, _, h, w = y.shape
        fmt = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        zeros = y.new_zeros(b, self.channels, h, w).contiguous(memory_format=fmt)
        state, out = (zeros, zeros), y
        for _ in range(self.stages):
            f = self.f_in(torch.cat([y, out], 1))
            state = self.f_recurrent(f, state)
            r = state[0]
            for block in self.f_res:
                r = F.relu(block(r) + r)
            out = y + self.f_out(r)
        out = _from01(out)
        return (out if self.training else out.clamp(-1.0, 1.0)).contiguous()


# -- DDN ----------------------------------------------------------------------------------------
def _box_along(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Mean over a window of 2r+1 along ``dim``, clipped at the borders, from cumulative sums."""
    n = x.shape[dim]
    shape = list(x.shape)
    shape[dim] = 1
    c = torch.cat([x.new_zeros(shape), torch.cumsum(x, dim)], dim)  # c[i] = sum of x[:i]
    idx = torch.arange(n, device=x.device)
    hi, lo = (idx + r + 1).clamp(max=n), (idx - r).clamp(min=0)
    count = (hi - lo).to(x.dtype).view([n if d == dim % x.dim() else 1 for d in range(x.dim())])
    return (c.index_select(dim, hi) - c.index_select(dim, lo)) / count


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window inside the image (border windows shrink): (B, C, H, W)."""
    return _box_along(_box_along(x, r, -2), r, -1)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int = 15, eps: float = 1.0) -> torch.Tensor:
    """He et al.'s guided filter, per channel: (B, C, H, W) guide and source -> filtered source."""
    r = radius
    mean_i, mean_p = _box(guide, r), _box(src, r)
    cov_ip = _box(guide * src, r) - mean_i * mean_p
    var_i = _box(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, r) * guide + _box(b, r)


class DDN(nn.Module):
    """Deep detail network: ResNet on the guided-filter detail layer, (B, 3, H, W) -> same."""

    def __init__(self, channels: int = 16, blocks: int = 12, radius: int = 15, eps: float = 1.0):
        super().__init__()
        self.radius, self.eps = radius, eps

        def cbr(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.head = nn.Sequential(*cbr(3, channels))
        self.blocks = nn.ModuleList(nn.Sequential(*cbr(channels, channels), *cbr(channels, channels)) for _ in range(blocks))
        self.tail = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.BatchNorm2d(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _to01(_check_input("DDN", x))
        detail = y - guided_filter(y, y, self.radius, self.eps)  # high-pass detail layer
        f = self.head(detail)
        for block in self.blocks:
            f = f + block(f)
        out = _from01(y + self.tail(f))
        return (out if self.training else out.clamp(-1.0, 1.0)).contiguous()


# -- DID-MDN ------------------------------------------------------------------------------------
class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4g) - BN-ReLU-conv kxk (g), concatenated to the input: C -> C + g."""

    def __init__(self, cin: int, growth: int, k: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=False), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True), nn.Conv2d(4 * growth, growth, k, padding=k // 2, bias=False),
        )

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 then 2x average pooling ("down"), nearest 2x up-sampling ("up") or none."""

    def __init__(self, cin: int, cout: int, mode: str | None):
        super().__init__()
        self.mode = mode
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=False), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        x = self.body(x)
        if self.mode == "down":
            return F.avg_pool2d(x, 2)
        if self.mode == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x


class DenseStream(nn.Module):
    """Six dense layer + transition pairs with one kernel size: (B, 3, H, W) -> (B, width, H, W)."""

    def __init__(self, k: int, downs: int, growth: int, width: int, blocks: int = 6):
        super().__init__()
        flat = blocks - 2 * downs
        modes = ["down"] * downs + [None] * flat + ["up"] * downs
        layers, cin = [], 3
        for mode in modes:
            layers += [DenseLayer(cin, growth, k), Transition(cin + growth, width, mode)]
            cin = width
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class DIDMDN(nn.Module):
    """DID-MDN generator: multi-stream dense network with a density label map, (B, 3, H, W) -> same."""

    def __init__(self, growth: tuple[int, int, int] = (12, 12, 16), width: int = 20, classes: int = 3,
                 refine: int = 20):
        super().__init__()
        self.streams = nn.ModuleList([
            DenseStream(7, 3, growth[0], width),  # Dense1: 7x7, 3 down / 3 up
            DenseStream(5, 2, growth[1], width),  # Dense2: 5x5, 2 down, 2 flat, 2 up
            DenseStream(3, 1, growth[2], width),  # Dense3: 3x3, 1 down, 4 flat, 1 up
        ])
        self.classes = classes
        self.density = nn.Sequential(nn.Conv2d(3 * width, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))
        fused = 3 * width + 3 + classes
        self.residual = nn.Sequential(nn.Conv2d(fused, refine, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(refine, 3, 3, padding=1))
        self.refine_in = nn.Sequential(nn.Conv2d(6, refine, 3, padding=1), nn.ReLU(inplace=True))
        self.pyramid = nn.ModuleList(nn.Conv2d(refine, 1, 1) for _ in range(4))
        self.refine_out = nn.Conv2d(refine + 4, 3, 3, padding=1)

    def density_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Rain-density class scores (B, classes) of an input (the stand-in for the paper's classifier)."""
        x, _ = pad_to_multiple(_check_input("DIDMDN", x), 8)
        return self.density(torch.cat([s(x) for s in self.streams], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = pad_to_multiple(_check_input("DIDMDN", x), 8)
        feats = torch.cat([s(x) for s in self.streams], 1)
        label = self.density(feats).softmax(-1)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        coarse = x - self.residual(torch.cat([feats, x, label], 1))
        f = self.refine_in(torch.cat([coarse, x], 1))
        pyr = []
        for scale, conv in zip((32, 16, 8, 4), self.pyramid):
            size = (max(1, f.shape[-2] // scale), max(1, f.shape[-1] // scale))
            p = F.relu(conv(F.adaptive_avg_pool2d(f, size)))
            pyr.append(F.interpolate(p, size=f.shape[-2:], mode="nearest"))
        out = torch.tanh(self.refine_out(torch.cat([f, *pyr], 1)))
        return out[..., :h, :w].contiguous()


# -- UMRL ---------------------------------------------------------------------------------------
class _DenseUnit(nn.Module):
    """One dense layer (5x5 kernels) and a transition: C -> width at the resampled scale."""

    def __init__(self, cin: int, growth: int, width: int, mode: str | None, k: int = 5):
        super().__init__()
        self.body = nn.Sequential(DenseLayer(cin, growth, k), Transition(cin + growth, width, mode))

    def forward(self, x):
        return self.body(x)


class UMRL(nn.Module):
    """Uncertainty-guided multi-scale residual learning, (B, 3, H, W) -> same.

    Residuals r_s and confidences c_s at s = 1/4, 1/2, 1; c_s * r_s guides the next scale.
    """

    def __init__(self, width: int = 32, growth: int = 32, head: int = 32):
        super().__init__()
        c = width
        self.enc1 = _DenseUnit(3, growth, c, "down")  # -> 1/2
        self.enc2 = _DenseUnit(c, growth, c, "down")  # -> 1/4
        self.enc3 = _DenseUnit(c, growth, c, "down")  # -> 1/8
        self.mid1 = _DenseUnit(c, growth, c, None)
        self.mid2 = _DenseUnit(c, growth, c, "up")  # -> 1/4
        self.dec4 = _DenseUnit(2 * c, growth, c, None)  # [mid, enc2] at 1/4
        self.dec2 = _DenseUnit(2 * c + 3, growth, c, "up")  # [dec4, enc2, c*r] at 1/4 -> 1/2
        self.dec1 = _DenseUnit(2 * c + 3, growth // 2, c // 2, "up")  # [dec2, enc1, c*r] at 1/2 -> 1
        self.dec0 = _DenseUnit(c // 2 + 3, growth // 2, c // 2, None, k=3)  # [dec1, c*r] at 1
        # shared heads: residual from [features (c), skip (c)] and confidence from [features, residual]
        self.res_head = nn.Sequential(
            DenseLayer(2 * c, head, 3), Transition(2 * c + head, head, None),
            DenseLayer(head, head, 3), Transition(2 * head, head, None),
            nn.Conv2d(head, 16, 3, padding=1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(16, 3, 3, padding=1), nn.Tanh(),
        )
        self.conf_head = nn.Sequential(
            nn.Conv2d(c + 3, 16, 3, padding=1), DenseLayer(16, 16, 3), Transition(32, 16, None),
            nn.Conv2d(16, 3, 3, padding=1), nn.Sigmoid(),
        )
        self.to_c = nn.Conv2d(c // 2, c, 1)  # full-scale features to the confidence head's width
        self.res_full = nn.Sequential(nn.Conv2d(c // 2, 16, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                      nn.Conv2d(16, 3, 3, padding=1), nn.Tanh())
        self.refine = nn.Sequential(nn.Conv2d(3, 8, 7, padding=3), nn.LeakyReLU(0.2, inplace=True),
                                    nn.Conv2d(8, 3, 3, padding=1), nn.Tanh())

    def _scale(self, feat, skip):
        r = self.res_head(torch.cat([feat, skip], 1))
        conf = self.conf_head(torch.cat([feat, r], 1))
        return r, conf

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, (h, w) = pad_to_multiple(_check_input("UMRL", x), 8)
        e1 = self.enc1(x)  # 1/2
        e2 = self.enc2(e1)  # 1/4
        m = self.mid2(self.mid1(self.enc3(e2)))  # 1/4
        d4 = self.dec4(torch.cat([m, e2], 1))
        r4, c4 = self._scale(d4, e2)  # residual and confidence at 1/4
        d2 = self.dec2(torch.cat([d4, e2, r4 * c4], 1))  # 1/2
        r2, c2 = self._scale(d2, e1)
        d1 = self.dec1(torch.cat([d2, e1, r2 * c2], 1))  # 1
        d0 = self.dec0(torch.cat([d1, F.interpolate(r2 * c2, scale_factor=2, mode="nearest")], 1))
        r1 = self.res_full(d0)
        c1 = self.conf_head(torch.cat([self.to_c(d0), r1], 1))
        out = self.refine(x - r1)
        return out[..., :h, :w].contiguous(), [c4, c2, c1[..., :h, :w]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[0]

    def confidences(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps (B, 3, h, w) at 1/4, 1/2 and full scale, as the paper's loss weights them."""
        return self._run(x)[1]


# -- registry -----------------------------------------------------------------------------------
def build_model(name: str, **kw) -> nn.Module:
    """A network by name (:data:`MODEL_NAMES`); ``kw`` go to its constructor.

    ``moedn`` takes ``cfg=ModelConfig(...)`` or ModelConfig fields as keywords.
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key in ("moedn", "moss"):
        cfg = kw.pop("cfg", None)
        if cfg is not None and kw:
            raise ValueError(f"build_model('moedn'): pass cfg or ModelConfig fields, not both (got {sorted(kw)})")
        return MOEDN(cfg if cfg is not None else ModelConfig(**kw))
    classes = {"prenet": PReNet, "ddn": DDN, "didmdn": DIDMDN, "umrl": UMRL}
    if key not in classes:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return classes[key](**kw)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as MOEDN's memory items excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_report() -> dict[str, dict]:
    """``{name: {"params", "published_m", "diff_pct", "source"}}`` for every network."""
    out = {}
    for name in MODEL_NAMES:
        n = count_params(build_model(name))
        pub, src = PUBLISHED_PARAMS[name]
        out[name] = {"params": n, "published_m": pub, "diff_pct": 100.0 * (n / 1e6 - pub) / pub, "source": src}
    return out
