import pytest
import torch
import torch.nn.functional as F

from mosslib.model.memory import RainMemory


def _mem(items, decay=0.5):
    m = RainMemory(len(items), len(items[0]), decay=decay)
    m.items.copy_(torch.tensor(items, dtype=torch.float32))
    return m


def test_items_are_buffers_not_parameters():
    m = RainMemory(8, 4)
    assert list(m.parameters()) == []
    assert "items" in dict(m.named_buffers())
    assert torch.allclose(m.items.norm(dim=1), torch.ones(8))  # random unit vectors


def test_same_seed_same_items_and_global_rng_untouched():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    a, b = RainMemory(16, 8, seed=5), RainMemory(16, 8, seed=5)
    assert torch.equal(a.items, b.items)
    assert torch.equal(before, torch.get_rng_state())
    assert not torch.equal(a.items, RainMemory(16, 8, seed=6).items)


def test_assign_picks_max_cosine():
    m = _mem([[1, 0], [0, 1], [-1, 0]])
    # queries (B=1, c=2, H=1, W=3): along +x (long), +y, and -x
    z = torch.tensor([[[[5.0, 0.1, -2.0]], [[0.0, 3.0, 0.1]]]])
    assert m.assign(z).tolist() == [[[0, 1, 2]]]


def test_eq3_hand_worked_example_with_unused_item():
    # items e0=(1,0), e1=(0,1), e2=(-1,0); tau=0.5
    m = _mem([[1, 0], [0, 1], [-1, 0]], decay=0.5)
    # queries: (2,0) and (4,2) choose e0; (0,2) chooses e1; nobody chooses e2
    z = torch.tensor([[[[2.0, 4.0, 0.0]], [[0.0, 2.0, 2.0]]]])
    counts = m.update_(z)
    assert counts.tolist() == [2, 1, 0]
    # e0 <- 0.5*(1,0) + 0.5*mean((2,0),(4,2)) = (0.5,0) + (1.5,0.5) = (2.0, 0.5)
    assert torch.allclose(m.items[0], torch.tensor([2.0, 0.5]))
    # e1 <- 0.5*(0,1) + 0.5*(0,2) = (0, 1.5)
    assert torch.allclose(m.items[1], torch.tensor([0.0, 1.5]))
    # the unused item stays exactly as it was (the release would shrink it to (-0.5, 0))
    assert torch.equal(m.items[2], torch.tensor([-1.0, 0.0]))
    assert m.usage.tolist() == [2, 1, 0]


def test_attention_and_read_match_direct_computation():
    torch.manual_seed(0)
    m = RainMemory(6, 4).eval()
    z = torch.randn(2, 4, 3, 5)
    q = F.normalize(z.flatten(2).transpose(1, 2), dim=-1)  # (B, n, c)
    e = F.normalize(m.items, dim=1)
    s = torch.einsum("bnc,mc->bnm", q, e)  # Eq. 1
    a = torch.exp(s) / torch.exp(s).sum(-1, keepdim=True)  # Eq. 4
    z_hat = torch.einsum("bnm,mc->bnc", a, m.items).transpose(1, 2).reshape(2, 4, 3, 5)  # Eq. 5
    att = m.attention(z)
    assert att.shape == (2, 6, 3, 5)
    assert torch.allclose(att.sum(1), torch.ones(2, 3, 5), atol=1e-6)
    assert torch.allclose(att, a.transpose(1, 2).reshape(2, 6, 3, 5), atol=1e-6)
    assert torch.allclose(m(z), z_hat, atol=1e-6)


def test_training_forward_updates_first_then_reads_updated_items():
    torch.manual_seed(1)
    m = RainMemory(4, 3, decay=0.0)  # decay 0: chosen items jump to the query mean
    z = torch.randn(1, 3, 2, 2)
    ref = RainMemory(4, 3, decay=0.0)
    ref.update_(z)
    out = m.train()(z)
    assert torch.equal(m.items, ref.items)
    assert torch.allclose(out, ref.eval()(z), atol=1e-6)


def test_eval_forward_leaves_items_unchanged():
    m = RainMemory(8, 4).eval()
    before = m.items.clone()
    m(torch.randn(2, 4, 3, 3))
    assert torch.equal(before, m.items)


def test_no_gradient_reaches_items_but_reaches_queries():
    m = RainMemory(8, 4).train()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    m(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert not m.items.requires_grad and m.items.grad is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        RainMemory(0, 4)
    with pytest.raises(ValueError):
        RainMemory(4, 4, decay=1.5)
    with pytest.raises(ValueError, match="B, c, H, W"):
        RainMemory(4, 4)(torch.randn(4, 4))


def test_update_without_boolean_indexing_equals_the_indexed_eq3():
    """The sync-free Eq. 3 (torch.where over all items) gives the bits of the indexed form."""
    torch.manual_seed(1)
    m = RainMemory(32, 8, decay=0.93)
    z = torch.randn(1, 8, 2, 7) * 3  # 14 queries for 32 items
    items, decay = m.items.clone(), m.decay
    q = z.flatten(2).transpose(1, 2).reshape(-1, 8)
    k = m.assign(z).reshape(-1)
    sums = torch.zeros(32, 8).index_add_(0, k, q)
    counts = torch.bincount(k, minlength=32).float()
    chosen = counts > 0
    assert 0 < int(chosen.sum()) < 32  # some items chosen, some not
    items[chosen] = decay * items[chosen] + (1.0 - decay) * (sums[chosen] / counts[chosen, None])
    got = m.update_(z)
    assert torch.equal(got, counts)
    assert torch.equal(m.items, items)
    assert torch.equal(m.usage, counts.long())
