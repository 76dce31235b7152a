"""The training probes (run: ``PYTHONPATH=.:experiments/train-probes .venv/bin/python -m pytest -q experiments/train-probes``)."""
import json
import math

import pytest
import torch

import trainprobe
from mosslib.method.checkpoint import load_checkpoint
from mosslib.method.profiles import make_config
from mosslib.method.trainer import Trainer


def smoke(**over):
    base = {"optim.steps": 4, "optim.pretrain_steps": 2, "optim.val_every": 2, "optim.ckpt_every": 2}
    return make_config("smoke", "full", data_root="", overrides={**base, **over})


def test_choose_batch_needs_the_margin_and_scales_lr():
    timing = {"lr": 1e-4, "s_per_step": {"16": 0.10, "32": 0.12, "64": 0.30},
              "images_per_s": {"16": 160.0, "32": 266.7, "64": 213.3}}
    c = trainprobe.choose_batch(timing)
    assert c["configured"] == 16 and c["batch"] == 32  # the most images per second, 1.67x
    assert c["lr"] == pytest.approx(1e-4 * math.sqrt(2)) and c["step_ratio"] == pytest.approx(1.2)
    assert trainprobe.choose_batch(timing, min_gain=2.0)["batch"] == 16  # not enough ahead: keep the configured batch
    flat = {"lr": 2e-4, "s_per_step": {"16": 0.1, "64": 0.39}, "images_per_s": {"16": 160.0, "64": 164.1}}
    c = trainprobe.choose_batch(flat)
    assert c["batch"] == 16 and c["lr"] == 2e-4 and c["step_ratio"] == 1.0 and c["gain"] == 1.0
def test_memory_format_changes_layout_not_training(tmp_path):
    """channels_last and contiguous activations train the same weights (to float rounding)."""
    cfg = smoke()
    runs = {}
    for fmt in ("contiguous", "channels_last"):
        tr = Trainer(cfg, tmp_path / fmt, quiet=True)
        trainprobe.set_memory_format(tr, fmt)
        assert tr.model.channels_last is (fmt == "channels_last")
        assert tr.teacher.net.channels_last is tr.model.channels_last
        tr.fit()
        runs[fmt] = load_checkpoint(tmp_path / fmt / "checkpoint.pt")
    a, b = runs["contiguous"]["model"], runs["channels_last"]["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # really two computations
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-5), k
    auto = Trainer(cfg, tmp_path / "auto", quiet=True)
    assert auto.model.channels_last is None  # CPU: channels_last inside forward
    with pytest.raises(ValueError, match="memory format"):
        trainprobe.set_memory_format(auto, "nhwc")


def test_main_times_batches_and_writes_no_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert trainprobe.main(["--profile", "smoke", "--data", "", "--device", "cpu", "--batches", "4,2", "--steps", "2"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res["s_per_step"]) == set(res["images_per_s"]) == {"2", "4"}
    for b, t in res["s_per_step"].items():
        assert t > 0 and res["images_per_s"][b] == pytest.approx(int(b) / t)
    assert not (tmp_path / "runs").exists()
