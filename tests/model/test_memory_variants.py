"""The memory variants of the study (temperature, rescale, Gumbel read, reseed, k-means init):
each checked against a direct computation; the defaults stay Eq. 3-5 exactly."""
import math

import pytest
import torch
import torch.nn.functional as F

from mosslib.model.config import ModelConfig
from mosslib.model.memory import RainMemory
from mosslib.model.network import MOEDN


def _z(seed=0, b=2, c=4, h=3, w=5):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 7.0


def test_default_state_dict_is_the_paper_memory_s():
    """A paper-faithful memory holds only items and usage, so the shipped model still loads."""
    assert set(RainMemory(8, 4).state_dict()) == {"items", "usage"}
    assert set(RainMemory(8, 4, read="gumbel").state_dict()) == {"items", "usage", "updates"}
    assert set(RainMemory(8, 4, reseed=5).state_dict()) == {"items", "usage", "updates", "recent"}


def test_temperature_divides_the_cosine_logits():
    mem = RainMemory(6, 4, temperature=0.1, seed=1).eval()
    z = _z()
    q = F.normalize(z.flatten(2).transpose(1, 2), dim=-1)
    s = q @ F.normalize(mem.items, dim=1).t()
    want = torch.softmax(s / 0.1, dim=-1) @ mem.items
    got = mem.read(z).flatten(2).transpose(1, 2)
    torch.testing.assert_close(got, want)
    # sharper than Eq. 4: the largest weight grows
    plain = RainMemory(6, 4, seed=1).eval()
    assert mem.weights(z).max(-1).values.mean() > plain.weights(z).max(-1).values.mean()


def test_rescale_gives_each_query_its_own_norm():
    mem = RainMemory(6, 4, rescale=True, seed=2).eval()
    mem.items.mul_(torch.arange(1.0, 7.0)[:, None] * 100)  # wildly different item norms
    z = _z(3)
    out = mem.read(z)
    torch.testing.assert_close(out.norm(dim=1), z.norm(dim=1))
    # its direction is the weighted mix of the unit items
    a = mem.weights(z)
    mix = a @ F.normalize(mem.items, dim=1)
    torch.testing.assert_close(F.normalize(out.flatten(2).transpose(1, 2), dim=-1), F.normalize(mix, dim=-1))


def test_gumbel_read_hard_in_both_modes_with_gradient_in_training():
    mem = RainMemory(6, 4, read="gumbel", temperature=1.0, min_temperature=0.03, anneal=0.5, seed=3)
    z = _z(4).requires_grad_(True)
    mem.eval()
    a = mem.weights(z)
    assert torch.equal(a, F.one_hot(mem.similarity(z).argmax(-1), 6).float())  # eval: the nearest item
    mem.train()
    torch.manual_seed(0)
    a = mem.weights(z)
    assert torch.allclose(a.sum(-1), torch.ones(a.shape[:-1]))
    assert ((a - a.round()).abs() < 1e-6).all()  # forward: one-hot rows
    (a * torch.arange(6.0)).sum().backward()  # straight-through: the soft sample's gradient reaches z
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_gumbel_temperature_anneals_per_update_to_its_floor():
    mem = RainMemory(6, 4, read="gumbel", temperature=1.0, min_temperature=0.03, anneal=0.5).train()
    assert mem.current_temperature() == 1.0
    for k in range(1, 8):
        mem(_z(k))
        assert int(mem.updates) == k
        assert mem.current_temperature() == pytest.approx(max(0.03, 0.5**k))
    assert RainMemory(6, 4, temperature=0.2).current_temperature() == 0.2  # a soft read does not anneal


def test_reseed_replaces_only_items_no_query_chose_by_queries():
    mem = RainMemory(5, 3, decay=0.5, reseed=2, seed=0).train()
    mem.items.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0], [0, -1, 0]]))
    z = torch.tensor([[3.0, 0.1, 0.0], [0.1, 2.0, 0.0]]).t().reshape(1, 3, 1, 2)  # queries near items 0 and 1
    mem(z)
    before = mem.items.clone()
    mem(z)  # the second update: items 2-4 were never chosen in the window of 2 updates -> reseeded
    queries = z.flatten(2)[0].t()  # (2, 3)
    for i in (2, 3, 4):
        assert any(torch.allclose(mem.items[i], q) for q in queries), i
    for i in (0, 1):  # chosen items follow Eq. 3 only
        assert not any(torch.allclose(mem.items[i], q) for q in queries)
        assert not torch.equal(mem.items[i], before[i])
    assert int(mem.recent.sum()) == 0  # the window restarts


def test_kmeans_initialises_items_to_cluster_means_at_the_first_update():
    gen = torch.Generator().manual_seed(0)
    a = torch.tensor([10.0, 0.0]) + 0.1 * torch.randn(20, 2, generator=gen)
    b = torch.tensor([0.0, 10.0]) + 0.1 * torch.randn(20, 2, generator=gen)
    q = torch.cat([a, b])  # (40, 2): two tight clusters
    z = q.t().reshape(1, 2, 5, 8)
    mem = RainMemory(2, 2, decay=0.999, kmeans=5, seed=0).train()
    mem(z)
    got = sorted(mem.items.tolist())
    want = sorted([a.mean(0).tolist(), b.mean(0).tolist()])
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-4, atol=1e-4)
    mem(z + 1.0)  # only the first update initialises
    assert int(mem.updates) == 2


def test_variants_build_from_the_model_config_and_survive_a_state_dict_round_trip():
    cfg = ModelConfig(ngf=8, delta=8, num_blocks=3, num_scales=2, num_layers=1, memory_items=16,
                      memory_read="gumbel", memory_temperature=0.5, memory_reseed=3, memory_kmeans=2, memory_rescale=True)
    net = MOEDN(cfg).train()
    mem = net.memory
    assert (mem.read_mode, mem.temperature, mem.reseed, mem.kmeans, mem.rescale) == ("gumbel", 0.5, 3, 2, True)
    net(torch.rand(2, 3, 16, 16) * 2 - 1)
    other = MOEDN(cfg)
    other.load_state_dict(net.state_dict())
    assert int(other.memory.updates) == 1 and torch.equal(other.memory.items, mem.items)
    with pytest.raises(ValueError, match="memory_read"):
        ModelConfig(memory_read="hard")
    with pytest.raises(ValueError):
        RainMemory(4, 2, temperature=0.0)


def test_default_read_is_eq4_bit_for_bit():
    mem = RainMemory(6, 4, seed=5).eval()
    z = _z(6)
    s = mem.similarity(z)
    want = (s.softmax(-1) @ mem.items).transpose(1, 2).reshape(z.shape)
    assert torch.equal(mem.read(z), want)
    assert math.isclose(mem.current_temperature(), 1.0)
