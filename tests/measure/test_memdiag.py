"""Memory diagnostics (mosslib.measure.memdiag, `mosslib memory`): usage, read sharpness, ablations."""
import json
import math

import numpy as np
import pytest
import torch

from mosslib.apps.cli import main
from mosslib.measure.memdiag import ablated_read, ablation_deltas, memory_health, real_photo_effect


def _images(n=3, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8) for _ in range(n)]


class _FixedQueries(torch.nn.Module):
    """A stand-in network: its encoder returns fixed queries, whatever the image."""

    def __init__(self, z, items):
        super().__init__()
        from mosslib.model.memory import RainMemory

        self.z = z
        self.memory = RainMemory(len(items), items.shape[1])
        self.memory.items.copy_(items)

    def encode(self, x):
        return self.z


def test_health_hand_worked():
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -3.0]])  # item 3 has norm 3
    # four queries: three along item 0 (norms 2, 4, 6), one along item 1 (norm 8)
    z = torch.tensor([[2.0, 4.0, 6.0, 0.0], [0.0, 0.0, 0.0, 8.0]]).reshape(1, 2, 2, 2)
    h = memory_health(_FixedQueries(z, items), [np.zeros((4, 4, 3), np.uint8)])
    assert h["positions"] == 4
    assert h["usage"]["alive"] == 2 and h["usage"]["top_share"] == 0.75
    assert h["usage"]["perplexity"] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    # every query has cosines (1, 0, -1, 0) up to order: softmax weight of the best item
    w = math.e / (math.e + 2 + math.exp(-1))
    assert h["attention"]["max_weight"] == pytest.approx(w)
    p = np.array([math.e, 1, 1, math.exp(-1)]) / (math.e + 2 + math.exp(-1))
    assert h["attention"]["entropy"] == pytest.approx(float(-(p * np.log(p)).sum()))
    assert h["attention"]["uniform_entropy"] == pytest.approx(math.log(4))
    assert (h["norms"]["item_min"], h["norms"]["item_max"]) == (pytest.approx(1.0), pytest.approx(3.0))
    assert h["norms"]["query_median"] == pytest.approx(5.0)  # median of 2, 4, 6, 8


def test_usage_counts_match_a_direct_assignment(tiny_moedn):
    model = tiny_moedn[0]
    imgs = _images(4, seed=1)
    h = memory_health(model, imgs)
    counts = torch.zeros(model.memory.num_items)
    n = 0
    for i in imgs:
        z = model.encode(torch.from_numpy(i).permute(2, 0, 1)[None].float() / 127.5 - 1)
        k = model.memory.assign(z).flatten()
        counts += torch.bincount(k, minlength=model.memory.num_items)
        n += k.numel()
    p = counts / n
    assert h["positions"] == n
    assert h["usage"]["alive"] == int((counts > 0).sum())
    assert h["usage"]["top_share"] == pytest.approx(float(p.max()))
    nz = p[p > 0]
    assert h["usage"]["perplexity"] == pytest.approx(float(torch.exp(-(nz * nz.log()).sum())), rel=1e-6)


def test_ablated_read_replaces_z_hat_and_is_restored(tiny_moedn):
    model = tiny_moedn[0]
    mem = model.memory
    z = torch.randn(2, mem.dim, 3, 4)
    base = mem.read(z)
    with ablated_read(model, "zeros"):
        assert torch.equal(mem(z), torch.zeros_like(base))
    with ablated_read(model, "mean"):
        got = mem(z)
        torch.testing.assert_close(got, base.mean(dim=(2, 3), keepdim=True).expand_as(base))
    assert torch.equal(mem.read(z), base)  # restored
    with pytest.raises(ValueError, match="ablation"):
        with ablated_read(model, "noise"):
            pass


class _Pair:
    def __init__(self, name, rainy, clean):
        self.name, self.pair = name, (rainy, clean)

    def load(self):
        return self.pair


def test_ablation_deltas_are_per_image_differences_with_an_interval(tiny_moedn):
    from mosslib.measure.evaluate import evaluate_pairs

    model = tiny_moedn[0]
    imgs = _images(6, seed=2)
    groups = {"a": [_Pair(f"x{i}", imgs[i], imgs[(i + 1) % 6]) for i in range(3)],
              "b": [_Pair(f"y{i}", imgs[i + 3], imgs[i]) for i in range(3)]}
    res = ablation_deltas(model, groups, n_boot=500)
    base = evaluate_pairs(groups, model)
    with ablated_read(model, "zeros"):
        zero = evaluate_pairs(groups, model)
    for g in ("a", "b"):
        d = [z["psnr"] - b["psnr"] for z, b in zip(zero[g], base[g])]
        assert res["ablation"]["zeros"][g] == pytest.approx(np.mean(d))
        lo, hi = res["ablation_ci"]["zeros"][g]
        assert lo <= np.mean(d) <= hi
        assert res["trained"][g] == pytest.approx(np.mean([b["psnr"] for b in base[g]]))


def test_real_photo_effect_is_zero_change_for_an_ablation_that_changes_nothing(tiny_moedn, monkeypatch):
    model = tiny_moedn[0]
    res = real_photo_effect(model, dict(enumerate(_images(2, seed=3))))
    assert res["n"] == 2 and res["removed"] >= 0
    assert set(res["ablation_change"]) == {"mean", "zeros"}


def test_memory_command_json_and_errors(tmp_path, capsys, tiny_moedn):
    from mosslib.data.embedded import ensure

    root = ensure(size="tiny") / "sirr_like"
    assert main(["memory", "--data", str(root), "--checkpoint", str(tiny_moedn[1]), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["usage"]) >= {"alive", "top_share", "perplexity"}
    assert set(res["attention"]) >= {"max_weight", "entropy", "uniform_entropy"}
    assert set(res["ablation"]) == {"mean", "zeros"} and set(res["ablation"]["mean"]) >= {"dense", "sparse"}
    assert main(["memory", "--data", str(root), "--checkpoint", str(tiny_moedn[1])]) == 0
    assert "ablation" in capsys.readouterr().out
    assert main(["memory", "--data", str(tmp_path / "nope"), "--checkpoint", str(tiny_moedn[1])]) == 2
    assert "nope" in capsys.readouterr().err
