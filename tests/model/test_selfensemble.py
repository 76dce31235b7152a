"""``mosslib.model.selfensemble``: the flip self-ensemble, and its ``--ensemble`` option in derain/evaluate."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import mosslib.apps.derain as D
from mosslib.apps.cli import main
from mosslib.model.selfensemble import ENSEMBLE_SIZES, mirror, self_ensemble



@pytest.fixture(scope="session")
def tiny(tiny_moedn):
    return tiny_moedn


def test_each_mirror_is_its_own_inverse_and_they_differ():
    x = torch.randn(2, 3, 5, 7)
    outs = [mirror(x, k) for k in range(4)]
    assert torch.equal(outs[0], x)
    for k, y in enumerate(outs):
        assert y.shape == x.shape and torch.equal(mirror(y, k), x)
    assert all(not torch.equal(outs[i], outs[j]) for i in range(4) for j in range(i + 1, 4))


def test_an_equivariant_forward_is_unchanged():
    x = torch.randn(1, 3, 6, 9)
    f = lambda t: torch.tanh(t) * 0.5  # noqa: E731 - pixel-wise, so it commutes with every mirror
    assert self_ensemble(f, 1) is f
    for n in ENSEMBLE_SIZES:
        assert torch.allclose(self_ensemble(f, n)(x), f(x), atol=1e-6)


def test_outputs_are_mirrored_back_before_averaging():
    """A forward that adds a left-to-right ramp: mirrored back and averaged, the ramp becomes flat."""
    x = torch.zeros(1, 1, 3, 5)
    ramp = torch.arange(5.0).view(1, 1, 1, 5)
    f = lambda t: t + ramp  # noqa: E731
    y2 = self_ensemble(f, 2)(x)
    assert torch.allclose(y2, torch.full_like(x, 2.0))  # (ramp + reversed ramp) / 2 = mean = 2
    rows = torch.arange(3.0).view(1, 1, 3, 1)
    g = lambda t: t + rows  # noqa: E731
    assert torch.allclose(self_ensemble(g, 2)(x), x + rows)  # a left-right mirror keeps the rows
    assert torch.allclose(self_ensemble(g, 4)(x), torch.ones_like(x))  # the upside-down ones flatten them


def test_bad_sizes_are_refused():
    for n in (0, 3, 8, "4"):
        with pytest.raises(ValueError, match="one of"):
            self_ensemble(lambda t: t, n)


def test_api_keeps_odd_sizes_and_changes_the_output(tiny):
    import copy

    model = copy.deepcopy(tiny[0])  # starts as the identity; perturbed, it is not mirror-symmetric
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    plain, ens = D.derain(img, model), D.derain(img, model, ensemble=4)
    assert ens.shape == plain.shape == img.shape and ens.dtype == np.uint8
    assert not np.array_equal(ens, plain)
    fast = D.derain(img, model, ensemble=4, precision="bf16")  # wraps the bf16 path as well
    gap = lambda a, b: np.abs(a.astype(int) - b.astype(int)).mean()  # noqa: E731
    assert fast.shape == img.shape and gap(fast, ens) < gap(ens, plain)  # closer to fp32 x4 than x1 is
    with pytest.raises(ValueError, match="ensemble"):
        D.derain(img, model, ensemble=3)


def test_cli_derain_and_evaluate_take_the_option(tiny, tmp_path, capsys):
    from mosslib.data.embedded import ensure

    _, path = tiny
    Image.fromarray(np.full((12, 10, 3), 90, np.uint8)).save(tmp_path / "a.png")
    args = ["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--checkpoint", str(path), "-q"]
    assert main(args + ["--ensemble", "2"]) == 0 and (tmp_path / "o" / "a.png").exists()
    with pytest.raises(SystemExit):
        main(args + ["--ensemble", "8"])  # transposes are not offered (see the module docstring)
    capsys.readouterr()
    root = ensure(size="tiny") / "sirr_like"
    scores = {}
    for n in (1, 2):
        assert main(["evaluate", "--data", str(root), "--checkpoint", str(path), "--ensemble", str(n), "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["ensemble"] == n and res["checkpoint"]
        scores[n] = res["splits"]["all"]["psnr"]
    assert scores[1] != scores[2]
