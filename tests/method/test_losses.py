import pytest
import torch

from mosslib.method import losses
from mosslib.method.teacher import Teacher


def test_l1_and_tv_on_hand_made_tensors():
    a = torch.zeros(1, 1, 2, 3)
    b = torch.ones(1, 1, 2, 3)
    assert losses.l1(a, b).item() == 1.0
    img = torch.tensor([[[[0.0, 1.0, 1.0], [0.0, 0.0, 2.0]]]])
    # |dx| = [1, 0, 0, 2] -> mean 0.75 ; |dy| = [0, 1, 1] -> mean 2/3
    assert abs(losses.tv(img).item() - (0.75 + 2 / 3)) < 1e-6
    assert losses.tv(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0


def test_noisy_samples_labels_alpha_and_clamp():
    b = 3
    x_l = torch.full((b, 3, 4, 4), 0.5)
    y_l = torch.full((b, 3, 4, 4), 0.1)
    x_u = torch.full((b, 3, 4, 4), 0.9)
    y_p = torch.full((b, 3, 4, 4), -0.2)
    g = torch.Generator().manual_seed(0)
    x_n, y_hat, info = losses.noisy_samples(x_l, y_l, x_u, y_p, 200, g, (0.5, 1.1))
    assert x_n.shape == (200, 3, 4, 4) and y_hat.shape == (200, 3, 4, 4)
    assert (info["alpha"] >= 0.5).all() and (info["alpha"] <= 1.1).all()
    assert x_n.min() >= -1 and x_n.max() <= 1
    backgrounds = torch.cat([x_l, y_l, x_u, y_p])
    labels = torch.cat([y_l, y_l, y_p, y_p])
    residuals = torch.cat([x_l - y_l, x_u - y_p])
    for k in range(200):
        bi, ri, a = info["background"][k], info["residual"][k], info["alpha"][k]
        # a clean image is its own label; a labeled rainy image's label is its ground truth;
        # an unlabeled image's (and a pseudo-label's) label is the pseudo-label
        assert torch.equal(y_hat[k], labels[bi])
        assert torch.allclose(x_n[k], (backgrounds[bi] + a * residuals[ri]).clamp(-1, 1))
    assert set(info["background"].tolist()) == set(range(4 * b))  # all four sources drawn
    assert set(info["residual"].tolist()) == set(range(2 * b))  # synthetic and pseudo residuals
    assert x_n.max() == 1.0  # 0.9 + 1.1 * 0.4 clamps


def test_teacher_ema_limits():
    s = torch.nn.Linear(3, 2)
    t = Teacher(s, decay=0.0)
    with torch.no_grad():
        s.weight.add_(1.0)
    t.update(s)  # decay 0 -> the student
    assert torch.equal(t.net.weight, s.weight)
    t1 = Teacher(s, decay=1.0)
    before = t1.net.weight.clone()
    with torch.no_grad():
        s.weight.add_(1.0)
    t1.update(s)  # decay 1 -> unchanged
    assert torch.equal(t1.net.weight, before)
    assert not t1.net.weight.requires_grad and not t1.training


def test_teacher_averages_memory_items(tiny_model_config):
    from mosslib.model.network import MOEDN

    s = MOEDN(tiny_model_config)
    t = Teacher(s, decay=0.5)
    old = t.net.memory.items.clone()
    s.train()(torch.rand(1, 3, 16, 16) * 2 - 1)  # moves some student items
    t.update(s)
    assert torch.allclose(t.net.memory.items, 0.5 * old + 0.5 * s.memory.items)
    assert torch.equal(t.net.memory.usage, s.memory.usage)
    t.net(torch.zeros(1, 3, 8, 8))  # the teacher reads but never updates its memory
    assert torch.allclose(t.net.memory.items, 0.5 * old + 0.5 * s.memory.items)


def test_teacher_multi_tensor_update_equals_the_per_tensor_eq7(tiny_model_config):
    """Eq. 7 as one multi-tensor update gives the bits of xi <- tau xi + (1 - tau) theta, tensor by tensor."""
    from mosslib.model.network import MOEDN

    torch.manual_seed(0)
    s = MOEDN(tiny_model_config)
    t = Teacher(s, decay=0.9)
    with torch.no_grad():
        for p in s.parameters():
            p.add_(torch.randn_like(p))
    s.train()(torch.rand(2, 3, 16, 16) * 2 - 1)  # moves memory items and usage
    src, ref = s.state_dict(), {k: v.clone() for k, v in t.net.state_dict().items()}
    for k, v in ref.items():
        v.copy_(v.mul(0.9).add_(src[k], alpha=1.0 - 0.9) if v.is_floating_point() else src[k])
    t.update(s)
    for k, v in t.net.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert not torch.equal(t.net.head.weight, s.head.weight)  # it averaged, it did not copy


def test_moss_loss_is_eq12_on_hand_worked_numbers():
    """L = l1 * L_SU + l2 * L_UN + l3 * L_TV, each term worked out by hand on 1x1x2x2 images."""
    out_l = torch.tensor([[[[0.0, 0.5], [1.0, -1.0]]]])
    y_l = torch.tensor([[[[0.5, 0.5], [0.0, -1.0]]]])  # |diff| = 0.5, 0, 1, 0 -> L_SU = 0.375
    out_n = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    y_hat = torch.zeros(1, 1, 2, 2)  # L_UN = 0.25; TV: rows |-1|, |0| -> 0.5; cols |-1|, |0| -> 0.5; 1.0
    terms = losses.moss_loss(out_l, y_l, out_n, y_hat, lambdas=(2.0, 3.0, 0.1))
    assert float(terms["l_su"]) == 0.375 and float(terms["l_un"]) == 0.25 and float(terms["l_tv"]) == 1.0
    assert float(terms["loss"]) == pytest.approx(2.0 * 0.375 + 3.0 * 0.25 + 0.1 * 1.0)  # 1.6 (float32)
    # pre-training (no noisy pairs): Eq. 6 alone, the other terms zero
    pre = losses.moss_loss(out_l, y_l, lambdas=(2.0, 3.0, 0.1))
    assert float(pre["loss"]) == 0.75 and float(pre["l_un"]) == float(pre["l_tv"]) == 0.0
