"""The int8 experiment (run: ``PYTHONPATH=.:experiments/int8 python -m pytest experiments/int8``): its walk is MOEDN's forward, its output stays close to fp32, and it falls back cleanly."""
import pytest
import torch

from mosslib.model.baselines import build_model
from mosslib.method.checkpoint import load_model
from mosslib.model.config import ModelConfig
from mosslib.measure.metrics import psnr
from mosslib.model.network import MOEDN
import quantized
from quantized import Int8MOEDN, prepare_int8, _Recorder, _walk, default_calibration, int8_supported, int8_why_not

needs_int8 = pytest.mark.skipif(not int8_supported(), reason=int8_why_not() or "int8 available")


def _x(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("fuse", [True, False])
def test_the_walk_is_the_models_forward(fuse):
    """The one description both interpreters run computes exactly MOEDN.forward (fp32 recorder)."""
    torch.manual_seed(0)
    model = MOEDN(ModelConfig(init="default", fuse=fuse)).eval()
    if fuse:
        for conv in model.fuse:  # open the (zero-initialised) fusion so it is exercised
            torch.nn.init.normal_(conv.weight, std=0.05)
    x = _x(1, 3, 32, 40)
    with torch.no_grad():
        xp, _ = model._pad(x)
        s = model.head(xp)
        g = _walk(model, s, _Recorder())
        y = torch.tanh(model.tail(s - g))
        ref = model(x)
    assert torch.allclose(y, ref, atol=1e-6)


def test_recorder_ranges_cover_the_sampled_values():
    rec = _Recorder(per_call=1000)
    rec._see("p", torch.linspace(-2, 3, 5000))
    full, central = rec.ranges(1.0)["p"], rec.ranges(0.9)["p"]
    assert full[0] >= -2 and full[1] <= 3 and full[1] - full[0] > 4.9
    assert -2 < central[0] < central[1] < 3  # the tails are clipped


@needs_int8
def test_int8_shipped_model_is_close_to_fp32():
    """On an embedded *test* image (not used for calibration): int8 output within about 1-2 uint8
    levels RMS of fp32 (PSNR between the two outputs > 38 dB); odd sizes and batches work."""
    from mosslib.data.layouts import open_dataset
    from mosslib.data.embedded import ensure
    from mosslib.data.images import to_tensor, to_uint8_image

    model = load_model()
    q = Int8MOEDN(model)
    pair = open_dataset(ensure() / "sirr_like").test_groups()["sparse"][0]
    rainy, _ = pair.load()
    x = to_tensor(rainy).unsqueeze(0)
    with torch.no_grad():
        ref, got = model(x), q(x)
    assert got.shape == x.shape and got.dtype == torch.float32
    assert psnr(to_uint8_image(got[0]), to_uint8_image(ref[0])) > 38.0
    xb = _x(2, 3, 37, 45)
    with torch.no_grad():
        yb = q(xb)
    assert yb.shape == xb.shape and torch.isfinite(yb).all()
    with pytest.raises(ValueError, match="expects"):
        q(torch.zeros(1, 1, 8, 8))


@needs_int8
def test_float_layers_trade_speed_for_accuracy():
    """Running the full-resolution layers in bf16 instead of int8 brings the output closer to fp32."""
    model = load_model()
    calib = default_calibration(n=3)
    x = default_calibration(n=6)[-1]  # an image outside the 3 calibration ones
    with torch.no_grad():
        ref = model(x)
        err_all = float((Int8MOEDN(model, calib)(x) - ref).abs().mean())
        err_mixed = float((Int8MOEDN(model, calib, float_layers=("e0", "d16", "d17", "d18", "d19"))(x) - ref).abs().mean())
    assert err_mixed < err_all


@needs_int8
def test_prepare_int8_and_fallbacks():
    model = load_model()
    assert isinstance(prepare_int8(model), Int8MOEDN)
    with pytest.warns(RuntimeWarning, match="MOEDN on CPU only"):
        assert prepare_int8(build_model("ddn")) is None


def test_derain_does_not_offer_int8():
    """int8 is an experiment (artifacts on some real photos, see experiments/int8/quantized.py), not a derain option."""
    from mosslib.apps import derain as D

    with pytest.raises(ValueError, match="precision"):
        D.make_forward(MOEDN(), "int8")


def test_int8_is_not_offered_without_vnni(monkeypatch):
    """Without VNNI oneDNN's int8 sums saturate (the int8 output of the shipped model was 26 dB from
    fp32 on an AVX2-only CPU): int8 is then refused with the reason, and prepare falls back."""
    monkeypatch.setattr(quantized, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not int8_supported()
    assert "VNNI" in int8_why_not() or "oneDNN quantized engine" in int8_why_not()
    model = MOEDN(ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=2, memory_items=64)).eval()
    with pytest.raises(RuntimeError, match="not available"):
        Int8MOEDN(model, [_x(1, 3, 16, 16)])
    with pytest.warns(RuntimeWarning, match="VNNI|oneDNN"):
        assert prepare_int8(model) is None
    monkeypatch.setattr(quantized, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert int8_supported() == ("onednn" in torch.backends.quantized.supported_engines)
