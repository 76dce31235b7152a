"""mosslib.method.archive: finished runs kept without their training state, restored on a new machine."""
import json

import pytest
import torch

from mosslib.apps import bookruns
from mosslib.method.archive import ARCHIVED, archive_run, portable_hash, restore_run
from mosslib.method.checkpoint import CheckpointError, load_model
from mosslib.method.profiles import config_hash, make_config
from mosslib.method.runs import config_of_run, evaluated, run_dir
from mosslib.model.config import to_dict

OVER = {"optim.steps": 4, "optim.pretrain_steps": 2, "optim.val_every": 2, "optim.ckpt_every": 2}


def _texts(folder):
    return {p.name: p.read_text() for p in folder.iterdir() if p.suffix in (".json", ".jsonl")}


def test_a_finished_run_is_restored_on_a_new_machine_without_training(tmp_path, capsys):
    archive = tmp_path / "results" / "runs"
    specs = [bookruns.RunSpec.make("full", OVER, weights=True, diagnose=True),
             bookruns.RunSpec.make("supervised", OVER)]
    first = bookruns.train_runs(specs, "smoke", "", tmp_path / "machine1", quiet=True, archive=archive)
    entries = sorted(p.name for p in archive.iterdir())
    assert entries == sorted(p.name for p in first)  # embedded data: no data root, the same hash
    for run in first:
        kept = archive / run.name
        assert (kept / "done.json").is_file() and list(kept.glob("eval-best-rgb-*.json"))
        assert not list(kept.glob("checkpoint.pt")) and not list(kept.glob("pretrain.pt"))
        assert all(str(tmp_path) not in t for t in _texts(kept).values())  # no machine path
    assert list((archive / first[0].name).glob("memory-*.json")) and (archive / first[0].name / "best.pt").is_file()
    assert not (archive / first[1].name / "best.pt").exists()

    capsys.readouterr()
    second = bookruns.train_runs(specs, "smoke", "", tmp_path / "machine2", quiet=True, archive=archive)
    assert capsys.readouterr().out.count("restored from the archive") == 2
    for a, b in zip(first, second):
        assert not (b / "checkpoint.pt").exists()  # nothing trained
        assert evaluated(b)["per_image"] == evaluated(a)["per_image"]
        assert config_of_run(b) == config_of_run(a)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(load_model(second[0])(x), load_model(first[0])(x), atol=2e-2)  # fp16 weights
    with pytest.raises(CheckpointError, match="without its weights"):
        load_model(second[1])
    # the pre-trained model came along (the explorer compares it), under a name no fork mistakes for a
    # training checkpoint
    from mosslib.apps.explorer.views import run_checkpoints
    assert not (second[0] / "pretrain.pt").exists() and (second[0] / "pretrained-model.pt").is_file()
    assert set(run_checkpoints(second[0])) == {"pre-trained", "self-trained"}
    json.loads((second[0] / ARCHIVED).read_text())


def test_table1_order_the_fork_archives_the_pre_trained_model_it_started_from(tmp_path):
    """Table 1 trains the supervised run first and MOSS forks its pre-training: MOSS's entry holds that
    pre-trained model (the explorer compares it), the supervised entry only its own selected model."""
    from mosslib.apps.explorer.views import run_checkpoints
    archive = tmp_path / "results" / "runs"
    specs = [bookruns.RunSpec.make("supervised", OVER, weights=True),
             bookruns.RunSpec.make("full", OVER, weights=True)]
    sup, moss = bookruns.train_runs(specs, "smoke", "", tmp_path / "machine1", quiet=True, archive=archive)
    assert (moss / "forked.json").is_file() and not (moss / "pretrain.pt").exists()
    assert set(run_checkpoints(moss)) == {"pre-trained", "self-trained"}  # the source's pretrain.pt
    assert (archive / sup.name / "best.pt").is_file() and not (archive / sup.name / "pretrained-model.pt").exists()
    kept = archive / moss.name / "pretrained-model.pt"
    assert kept.is_file()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(load_model(kept)(x), load_model(sup / "pretrain.pt")(x), atol=2e-2)
    restored = bookruns.train_runs(specs[1:], "smoke", "", tmp_path / "machine2", quiet=True, archive=archive)[0]
    assert set(run_checkpoints(restored)) == {"pre-trained", "self-trained"}


def test_archived_text_is_the_same_wherever_the_data_and_runs_lie(tmp_path):
    data1, data2 = tmp_path / "m1" / "data", tmp_path / "m2" / "elsewhere"
    cfg1 = make_config("smoke", "full", data_root=str(data1), overrides=OVER)
    cfg2 = make_config("smoke", "full", data_root=str(data2), overrides=OVER)
    assert config_hash(cfg1) != config_hash(cfg2) and portable_hash(cfg1) == portable_hash(cfg2)
    run = run_dir(cfg1, tmp_path / "m1" / "runs")
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(to_dict(cfg1)))
    (run / "forked.json").write_text(json.dumps({"from": str(run.parent / "other-0123456789")}))
    (run / "done.json").write_text(json.dumps({"config": to_dict(cfg1), "config_hash": config_hash(cfg1)}))
    (run / f"eval-best-rgb-{config_hash(cfg1)}.json").write_text(json.dumps(
        {"run": str(run), "test": f"{data1}/DDN-SIRR", "config_hash": config_hash(cfg1), "per_image": {"dense": [1.0]}}))
    (run / "checkpoint.pt").write_bytes(b"not archived")

    kept = archive_run(run, tmp_path / "archive")
    texts = _texts(kept)
    assert kept.name.endswith(portable_hash(cfg1)) and f"eval-best-rgb-{portable_hash(cfg1)}.json" in texts
    assert not (kept / "checkpoint.pt").exists()
    assert all(str(tmp_path) not in t and config_hash(cfg1) not in t for t in texts.values())
    assert json.loads(texts["forked.json"])["from"] == "$RUNS/other-0123456789"

    other = run_dir(cfg2, tmp_path / "m2" / "runs")
    assert restore_run(cfg2, other, tmp_path / "archive")
    assert config_of_run(other) == cfg2
    ev = json.loads((other / f"eval-best-rgb-{config_hash(cfg2)}.json").read_text())
    assert ev == {"run": str(other), "test": f"{data2}/DDN-SIRR", "config_hash": config_hash(cfg2),
                  "per_image": {"dense": [1.0]}}
    assert not restore_run(cfg2, other, tmp_path / "archive")  # a finished folder is left alone


def test_only_a_finished_run_is_archived(tmp_path):
    cfg = make_config("smoke", "full", data_root="", overrides=OVER)
    run = run_dir(cfg, tmp_path)
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(to_dict(cfg)))
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        archive_run(run, tmp_path / "archive")
    assert not restore_run(cfg, run, tmp_path / "archive")  # nothing archived: nothing restored
