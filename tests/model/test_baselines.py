"""Baseline networks: interface (shape, range, odd sizes, training), parameter counts and GFLOP
against the published / measured figures of their public definitions (docs/release.md)."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mosslib.model import baselines
from mosslib.model.baselines import MODEL_NAMES, PUBLISHED_GFLOP_256, PUBLISHED_PARAMS, build_model, count_params
from mosslib.model.config import ModelConfig
from mosslib.model.network import MOEDN

PEERS = ("prenet", "ddn", "didmdn", "umrl")

# allowed relative difference from the published parameter count
PARAM_TOLERANCE = {"prenet": 0.01, "ddn": 0.03, "didmdn": 0.05, "umrl": 0.10, "moedn": 0.10}


def test_model_names_cover_the_issue():
    assert set(MODEL_NAMES) >= {"moedn", "prenet", "ddn", "didmdn"}
    assert set(MODEL_NAMES) & {"umrl", "jorder", "mspfn"}
    assert set(PUBLISHED_PARAMS) == set(MODEL_NAMES)


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("size", [(17, 30), (33, 8)])
def test_shape_and_range_for_odd_sizes(name, size):
    torch.manual_seed(0)
    net = build_model(name).eval()
    x = torch.rand(2, 3, *size) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert not torch.equal(y, x)  # it does something


@pytest.mark.parametrize("name", PEERS)
def test_trains_with_l1(name):
    torch.manual_seed(0)
    net = build_model(name).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, target = torch.rand(2, 3, 24, 20) * 2 - 1, torch.rand(2, 3, 24, 20) * 2 - 1
    before = [p.detach().clone() for p in net.parameters()]
    loss = torch.nn.functional.l1_loss(net(x), target)
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in net.parameters())
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_parameter_counts_near_published(name):
    n = count_params(build_model(name))
    published = PUBLISHED_PARAMS[name][0] * 1e6
    assert abs(n - published) / published <= PARAM_TOLERANCE[name], (name, n, published)


def test_prenet_is_exactly_the_published_size():
    assert count_params(build_model("prenet")) == 168_963
    assert count_params(baselines.PReNet(stages=3)) == 168_963  # stages share weights


@pytest.mark.parametrize("name,tol", [("prenet", 0.01), ("ddn", 0.02), ("didmdn", 0.05)])
def test_gflop_near_public_definitions(name, tol):
    net = build_model(name).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros(1, 3, 64, 64))
    gflop_256 = counter.get_total_flops() / 1e9 * 16  # all convolutional: work scales with pixels
    assert abs(gflop_256 - PUBLISHED_GFLOP_256[name]) / PUBLISHED_GFLOP_256[name] <= tol


def test_prenet_work_grows_with_stages():
    def flops(stages):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            baselines.PReNet(stages=stages)(torch.zeros(1, 3, 16, 16))
        return counter.get_total_flops()

    assert flops(6) == 3 * flops(2)


def test_build_model_moedn_and_errors():
    assert isinstance(build_model("moedn"), MOEDN)
    cfg = ModelConfig(ngf=8, delta=8, num_blocks=2, num_scales=1, num_layers=1, memory_items=8)
    assert build_model("moedn", cfg=cfg).cfg == cfg
    assert build_model("MOEDN", ngf=8).cfg.ngf == 8
    assert isinstance(build_model("DID-MDN"), baselines.DIDMDN)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="not both"):
        build_model("moedn", cfg=cfg, ngf=4)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        build_model("ddn")(torch.zeros(1, 1, 8, 8))


def test_guided_filter_keeps_constants_and_smooths_noise():
    const = torch.full((1, 3, 20, 30), 0.3)
    assert torch.allclose(baselines.guided_filter(const, const, 5, 1.0), const, atol=1e-6)
    torch.manual_seed(0)
    noise = torch.rand(1, 3, 40, 40)
    base = baselines.guided_filter(noise, noise, 15, 1.0)
    assert base.shape == noise.shape
    assert base.std() < 0.5 * noise.std()  # strong smoothing with eps = 1 (DDN's setting)
    # tiny images (smaller than the window) still work
    assert baselines.guided_filter(noise[..., :3, :2], noise[..., :3, :2]).shape == (1, 3, 3, 2)


def test_deterministic_under_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        net = build_model("umrl").eval()
        with torch.no_grad():
            outs.append(net(torch.zeros(1, 3, 16, 16)))
    assert torch.equal(*outs)


def test_umrl_confidences_and_didmdn_density():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 20, 28) * 2 - 1
    with torch.no_grad():
        confs = build_model("umrl").eval().confidences(x)
        logits = build_model("didmdn").eval().density_logits(x)
    assert [c.shape[-1] for c in confs] == [8, 16, 28]  # 1/4 and 1/2 of the padded 32; full scale cropped
    assert all(((c >= 0) & (c <= 1)).all() for c in confs)
    assert logits.shape == (1, 3)


def test_param_report_lists_differences():
    rep = baselines.param_report()
    assert set(rep) == set(MODEL_NAMES)
    assert rep["prenet"]["params"] == 168_963
    assert all("source" in r and isinstance(r["diff_pct"], float) for r in rep.values())


@pytest.mark.parametrize("shape", [(1, 3, 40, 37), (2, 1, 5, 3)])
def test_box_filter_is_the_clipped_window_mean(shape):
    torch.manual_seed(0)
    x = torch.rand(*shape)
    r = 4
    ref = torch.nn.functional.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    assert torch.allclose(baselines._box(x, r), ref, atol=1e-6)
