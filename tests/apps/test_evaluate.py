import json

import pytest

from mosslib.apps.cli import main


def test_input_row_on_real_ddn_sirr(shared_data, capsys):
    assert main(["evaluate", "--data", str(shared_data / "DDN-SIRR"), "--method", "input", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["method"] == "input" and res["convention"] == "rgb"
    s = res["splits"]
    assert s["dense"]["n"] == 10 and s["sparse"]["n"] == 10 and s["all"]["n"] == 20
    # measured independently (../shared/data/README.md): dense 17.818, sparse 23.931 dB; SSIM 0.787, 0.858
    assert s["dense"]["psnr"] == pytest.approx(17.818, abs=0.01)
    assert s["sparse"]["psnr"] == pytest.approx(23.931, abs=0.01)
    assert s["dense"]["ssim"] == pytest.approx(0.787, abs=0.001)


def test_input_row_on_embedded_data_and_bad_paths(tmp_path, capsys):
    from mosslib.data.embedded import ensure

    root = ensure(size="tiny") / "sirr_like"
    assert main(["evaluate", "--data", str(root), "--method", "input", "--convention", "y", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["splits"]) == {"dense", "sparse", "all"} and res["convention"] == "y"
    assert res["splits"]["dense"]["psnr"] < res["splits"]["sparse"]["psnr"]  # dense rain is worse
    assert main(["evaluate", "--data", str(tmp_path / "nope"), "--method", "input"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(root), "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
