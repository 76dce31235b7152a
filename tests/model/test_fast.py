"""The fast inference path: same function as the model (fp32), close in bf16, graceful fallbacks."""
import numpy as np
import pytest
import torch

from mosslib.measure.evaluate import psnr_change_vs_fp32
from mosslib.model import fast
from mosslib.model.baselines import build_model
from mosslib.model.config import ModelConfig
from mosslib.model.network import MOEDN

needs_bf16 = pytest.mark.skipif(not fast.bf16_supported("cpu"), reason="no bf16 kernels on this CPU")


@pytest.fixture
def moedn():
    torch.manual_seed(0)
    return MOEDN(ModelConfig(init="default"))  # random weights everywhere (identity init zeroes branches)


@pytest.fixture(autouse=True)
def fused_kernels_pay(monkeypatch):
    """These tests check the fused path: on an AVX2-only CI machine ``prepare`` would skip it."""
    monkeypatch.setattr(fast, "fused_pays", lambda device="cpu": True)


def _x(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_fp32_matches_the_model(moedn):
    x = _x(2, 3, 37, 50)
    with torch.no_grad():
        ref = moedn.eval()(x)
    moedn.train()
    f = fast.prepare(moedn, "fp32")
    y = f(x)
    assert not moedn.training  # prepare puts the model in eval mode
    assert y.shape == x.shape and y.dtype == torch.float32 and y.is_contiguous()
    assert torch.allclose(y, ref, atol=1e-5), float((y - ref).abs().max())
    assert "fused" in f.describe() and f.precision == "fp32"


@needs_bf16
def test_bf16_close_to_fp32(moedn):
    x = _x(1, 3, 40, 33)
    with torch.no_grad():
        ref = moedn.eval()(x)
    f = fast.prepare(moedn, "bf16")
    y = f(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert float((y - ref).abs().max()) < 0.05
    assert float((y - ref).abs().mean()) < 0.01
    assert not torch.equal(y, ref)  # it really ran in bf16


@pytest.mark.parametrize("kw", [dict(use_memory=False), dict(use_skip=False), dict(num_scales=0), dict(fuse=False), {}])
def test_fused_path_follows_config(kw):
    torch.manual_seed(1)
    cfg = dict(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=2, memory_items=16, init="default") | kw
    net = MOEDN(ModelConfig(**cfg)).eval()
    for conv in net.fuse or []:  # open the (zero-initialised) encoder-to-decoder fusion
        torch.nn.init.normal_(conv.weight, std=0.1)
    x = _x(1, 3, 13, 22)
    with torch.no_grad():
        ref = net(x)
    f = fast.prepare(net, "fp32")
    assert "fused" in f.describe()
    assert torch.allclose(f(x), ref, atol=1e-5)


def test_weights_are_read_at_prepare_time(moedn):
    x = _x(1, 3, 16, 16)
    f = fast.prepare(moedn, "fp32")
    before = f(x)
    with torch.no_grad():
        moedn.tail.bias.add_(0.5)
    assert torch.equal(f(x), before)
    assert not torch.allclose(fast.prepare(moedn, "fp32")(x), before)


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=needs_bf16)])
def test_generic_path_for_baselines(precision):
    torch.manual_seed(0)
    net = build_model("ddn").eval()
    x = _x(1, 3, 21, 18)
    with torch.no_grad():
        ref = net(x)
    f = fast.prepare(net, precision)
    assert "generic" in f.describe()
    assert torch.allclose(f(x), ref, atol=1e-5 if precision == "fp32" else 0.1)


def test_bad_precision_and_input(moedn):
    with pytest.raises(ValueError, match="precision"):
        fast.prepare(moedn, "fp16")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        fast.prepare(moedn, "fp32")(torch.zeros(1, 1, 8, 8))


def test_bf16_unsupported_falls_back(moedn, monkeypatch):
    monkeypatch.setattr(fast, "bf16_supported", lambda device="cpu": False)
    with pytest.warns(RuntimeWarning, match="bf16"):
        f = fast.prepare(moedn, "bf16")
    assert f.precision == "fp32"


def test_compile_failure_falls_back(moedn, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        f = fast.prepare(moedn, "fp32", compile=True)
    assert not f.compiled
    x = _x(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(f(x), moedn(x), atol=1e-5)


def test_default_precision_is_never_slower_than_fp32_on_avx2(moedn, monkeypatch):
    """An AVX2-only CPU (no native bf16; oneDNN's fused kernels no faster than eager): the default
    is fp32, and the fp32 "fast" path is the eager model itself, so it cannot be slower."""
    monkeypatch.undo()  # the real fused_pays, with this CPU's flags replaced below
    monkeypatch.setattr(fast, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not fast.native_bf16("cpu") and fast.default_precision("cpu") == "fp32"
    assert not fast.fused_pays("cpu")
    f = fast.prepare(moedn, fast.default_precision("cpu"))
    assert f.precision == "fp32" and f._fn is moedn and "eager" in f.describe()
    # a CPU with native bf16 (avx512_bf16) and oneDNN's bf16 kernels defaults to bf16
    monkeypatch.setattr(fast, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    monkeypatch.setattr(fast, "bf16_supported", lambda device="cpu": True)
    assert fast.default_precision("cpu") == "bf16"
    monkeypatch.setattr(fast, "bf16_supported", lambda device="cpu": False)
    assert fast.default_precision("cpu") == "fp32"


def test_cpu_info_and_support_flags():
    info = fast.cpu_info()
    assert set(info) >= {"capability", "avx512_bf16", "mkldnn_bf16"}
    assert isinstance(fast.bf16_supported("cpu"), bool)
    assert fast.bf16_supported("meta") is False


def _pairs(n=2, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        clean = rng.integers(0, 256, (24, 31, 3), dtype=np.uint8)
        rainy = np.clip(clean.astype(int) + rng.integers(0, 60, clean.shape), 0, 255).astype(np.uint8)
        out.append((rainy, clean))
    return out


def test_psnr_change_fp32_is_zero():
    torch.manual_seed(0)
    net = MOEDN(ModelConfig(ngf=8, delta=8, num_blocks=2, num_scales=1, num_layers=1, memory_items=8, init="default"))
    res = psnr_change_vs_fp32(net, _pairs(), precision="fp32")
    assert res["n"] == 2
    assert abs(res["delta_db"]) < 1e-3 and res["max_pixel_diff"] <= 1
    assert 0 < res["psnr_fp32"] < 60


@needs_bf16
def test_psnr_change_bf16_small():
    torch.manual_seed(0)
    net = MOEDN(ModelConfig(ngf=8, delta=8, num_blocks=2, num_scales=1, num_layers=1, memory_items=8, init="default"))
    res = psnr_change_vs_fp32(net, _pairs(), precision="bf16")
    assert abs(res["delta_db"]) < 0.2
    assert "bf16" in res["path"]


def test_psnr_change_rejects_bad_pairs():
    net = build_model("ddn")
    with pytest.raises(ValueError, match="no pairs"):
        psnr_change_vs_fp32(net, [], precision="fp32")
    with pytest.raises(ValueError, match="uint8"):
        psnr_change_vs_fp32(net, [(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))], precision="fp32")


@pytest.mark.realdata
def test_psnr_change_on_ddn_sirr_pairs(shared_data):
    from mosslib.data.layouts import open_dataset

    pairs = open_dataset(shared_data / "DDN-SIRR").test_groups()["sparse"][:1]
    torch.manual_seed(0)
    net = MOEDN(ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=3, num_layers=1, memory_items=32, init="default"))
    res = psnr_change_vs_fp32(net, pairs, precision="bf16" if fast.bf16_supported() else "fp32")
    assert res["n"] == 1 and abs(res["delta_db"]) < 0.2
