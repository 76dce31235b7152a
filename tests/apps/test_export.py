"""Exporting a run's best model: fp16 storage, a model card, scores of the stored weights."""
import json

import pytest
import torch

from mosslib.method.checkpoint import CheckpointError, load_checkpoint, load_model
from mosslib.apps.export import export_model, rescore_model
from mosslib.method.profiles import make_config
from mosslib.method.trainer import Trainer


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = make_config("smoke", "full", data_root="", overrides={"optim.steps": 4, "optim.pretrain_steps": 2,
                                                                "optim.val_every": 2, "optim.ckpt_every": 2})
    Trainer(cfg, out, quiet=True).fit()
    return out


def test_export_fp16_with_card(smoke_run, tmp_path):
    from mosslib.data.embedded import ensure

    test_folder = ensure(size="tiny") / "sirr_like"
    card = export_model(smoke_run, tmp_path / "m.pt", evals={"embedded": str(test_folder)})
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    assert ckpt["card"]["best_step"] == load_checkpoint(smoke_run / "best.pt")["step"]
    side = json.loads((tmp_path / "m.json").read_text())
    assert side == json.loads(json.dumps(card)) and side["finished"] and side["storage"] == "fp16"
    assert set(side["metrics"]["embedded"]) == {"rgb", "y"}
    assert side["trained_in_segments"][0]["from_step"] == 0
    assert side["trained_in_segments"][0]["git_commit"] == side["trained_with"]["git_commit"]
    assert side["metrics"]["embedded"]["rgb"]["splits"]["all"]["n"] > 0
    # the stored weights compute (in fp32) almost what the run's best model computes
    a, b = load_model(smoke_run), load_model(tmp_path / "m.pt")
    x = torch.rand(1, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max().item() < 1e-2
    size32 = sum(v.numel() * 4 for v in a.state_dict().values())
    assert (tmp_path / "m.pt").stat().st_size < 0.7 * size32


def test_rescoring_an_exported_file_keeps_its_weights_and_adds_scores(smoke_run, tmp_path):
    """A model exported where no test set lies (a GPU trainer) gets its card's scores here."""
    from mosslib.apps.cli import main
    from mosslib.data.embedded import ensure

    test_folder = ensure(size="tiny") / "sirr_like"
    first = export_model(smoke_run, tmp_path / "gpu.pt")
    assert first["metrics"] == {}
    card = rescore_model(tmp_path / "gpu.pt", tmp_path / "ship.pt", evals={"embedded": str(test_folder)})
    a, b = load_checkpoint(tmp_path / "gpu.pt"), load_checkpoint(tmp_path / "ship.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) and a["model"][k].dtype == b["model"][k].dtype for k in a["model"])
    assert b["card"]["metrics"]["embedded"]["rgb"]["splits"]["all"]["n"] > 0
    assert card["best_step"] == first["best_step"] and card["rescored"]["from"] == str(tmp_path / "gpu.pt")
    assert json.loads((tmp_path / "ship.json").read_text())["file_bytes"] == (tmp_path / "ship.pt").stat().st_size
    # the same through the command line; a checkpoint that is not an exported model is refused
    assert main(["export", str(tmp_path / "gpu.pt"), "-o", str(tmp_path / "cli.pt"), "--eval", f"e={test_folder}"]) == 0
    assert main(["export", str(smoke_run / "best.pt"), "-o", str(tmp_path / "no.pt")]) == 2


def test_card_names_the_selection_rule():
    from mosslib.apps.export import selection_rule

    plain = selection_rule({"data": {"val_extra_rain": ""}})
    assert "held-out split" in plain and "procedural" not in plain
    mixed = selection_rule({"data": {"val_extra_rain": "dense,heavy"}})
    assert mixed.startswith(plain) and "procedural dense / heavy rain" in mixed


def test_export_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(CheckpointError, match="no best.pt"):
        export_model(tmp_path, tmp_path / "m.pt")


def test_cli_export(smoke_run, tmp_path, capsys):
    from mosslib.apps.cli import main

    assert main(["export", str(smoke_run), "-o", str(tmp_path / "x.pt"), "--fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == (tmp_path / "x.pt").stat().st_size
    assert main(["export", str(smoke_run), "-o", str(tmp_path / "y.pt"), "--eval", "nofolder"]) == 2
    assert "NAME=FOLDER" in capsys.readouterr().err


def test_card_of_a_warm_started_run_carries_its_lineage(smoke_run, tmp_path):
    """A run started with --init-from names the file, its hash and that model's card (no scores)."""
    from mosslib.method.lineage import file_sha256

    parent = tmp_path / "parent.pt"
    export_model(smoke_run, parent)
    cfg = make_config("smoke", "full", data_root="", overrides={
        "optim.steps": 2, "optim.pretrain_steps": 0, "optim.val_every": 2, "optim.ckpt_every": 2,
        "optim.init_from": str(parent), "optim.init_sha256": file_sha256(parent)})
    Trainer(cfg, tmp_path / "warm", quiet=True).fit()
    card = export_model(tmp_path / "warm", tmp_path / "child.pt")
    lineage = card["warm_start"]
    assert lineage["from"] == str(parent) and lineage["sha256"] == file_sha256(parent)
    assert lineage["card"]["best_step"] == load_checkpoint(smoke_run / "best.pt")["step"]
    assert "metrics" not in lineage["card"]
    assert "warm_start" not in export_model(smoke_run, tmp_path / "plain.pt")


def test_export_never_touches_the_shipped_model_unless_asked(smoke_run, tmp_path, capsys, monkeypatch):
    """Without -o the command used to overwrite mosslib/weights/moss_cpu.pt and its card: now an
    output (-o) or --ship is required, and only --ship writes the package's model."""
    import mosslib.apps.export as export_mod
    from mosslib.apps.cli import main

    shipped = tmp_path / "weights" / "moss_cpu.pt"  # stands in for the package's file
    monkeypatch.setattr(export_mod, "shipped_model_path", lambda: shipped)
    with pytest.raises(SystemExit) as exc:
        main(["export", str(smoke_run)])
    assert exc.value.code == 2 and "--ship" in capsys.readouterr().err
    assert not shipped.exists()
    with pytest.raises(SystemExit):
        main(["export", str(smoke_run), "-o", str(tmp_path / "a.pt"), "--ship"])  # one or the other
    assert main(["export", str(smoke_run), "-o", str(tmp_path / "a.pt")]) == 0
    assert not shipped.exists() and (tmp_path / "a.pt").is_file()
    assert main(["export", str(smoke_run), "--ship"]) == 0
    assert shipped.is_file() and shipped.with_suffix(".json").is_file()
