"""The model that ships inside the package (``mosslib/weights/moss_cpu.pt``) and its card."""
import json
from pathlib import Path

import pytest

from mosslib.method.checkpoint import load_checkpoint, load_model, shipped_model_path
from mosslib.apps.export import card_markdown

ROOT = Path(__file__).resolve().parents[2]
CARD = shipped_model_path().with_suffix(".json")


def test_shipped_model_is_small_and_loads():
    path = shipped_model_path()
    assert path.is_file(), f"{path} is missing"
    assert path.stat().st_size < 15e6
    model = load_model()
    ckpt = load_checkpoint(path)
    assert ckpt["card"]["config"]["profile"] == "cpu"
    card = ckpt["card"]
    # the card tells how far its run got: finished means every configured step was trained, and the
    # chosen step is one of those trained (a run cut short by a time limit says finished: false)
    assert card["finished"] == (card["steps_trained"] == card["config"]["optim"]["steps"])
    assert 0 < card["validation"]["step"] == card["best_step"] <= card["steps_trained"]
    assert model.checkpoint_path == str(path)


def test_card_says_how_the_model_was_chosen_and_scores_both_conventions():
    card = json.loads(CARD.read_text())
    assert "validation" in card["selection"] and card["validation"]["psnr"] > 0
    assert card["config"]["data"]["test"] == "DDN-SIRR" and card["config"]["data"]["labeled"] == "Rain100L"
    assert {"DDN-SIRR", "Rain100L"} <= set(card["metrics"])
    for by_conv in card["metrics"].values():
        assert set(by_conv) == {"rgb", "y"}
    assert set(card["metrics"]["DDN-SIRR"]["rgb"]["splits"]) >= {"dense", "sparse"}
    assert card["metrics"]["DDN-SIRR"]["rgb"]["splits"]["dense"]["n"] == 10


def test_readme_quotes_the_card():
    assert card_markdown(json.loads(CARD.read_text())) in (ROOT / "README.md").read_text()


def test_evaluate_without_checkpoint_reproduces_the_card(shared_data, capsys):
    """The card's DDN-SIRR numbers are those of the shipped file (20 images, ~10 s)."""
    from mosslib.apps.cli import main

    assert main(["evaluate", "--data", str(shared_data / "DDN-SIRR"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    card = json.loads(CARD.read_text())["metrics"]["DDN-SIRR"]["rgb"]["splits"]
    for split in ("dense", "sparse"):
        assert out["splits"][split]["psnr"] == pytest.approx(card[split]["psnr"], abs=1e-3)
