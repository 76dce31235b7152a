"""The committed cpu book (``results/cpu/``) is complete, and the README quotes it as it is."""
import re
from pathlib import Path

import pandas as pd
import pytest

from mosslib.measure import paper

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "cpu"
README = (REPO / "README.md").read_text(encoding="utf-8")


def read(name):
    path = RESULTS / name
    if not path.exists():
        pytest.skip(f"{path} is not committed")
    meta = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert "# profile: cpu" in meta, f"{path}: not a cpu-profile table"
    return pd.read_csv(path, comment="#")


def test_the_readme_block_is_the_ledger_of_the_committed_results():
    """The README's results block is what the ledger makes of results/cpu now (nothing typed)."""
    from mosslib.apps.ledger import README_END, README_START, build_ledger, readme_markdown

    block = README[README.index(README_START) + len(README_START):README.index(README_END)].strip()
    assert block == readme_markdown(build_ledger(REPO / "results" / "cpu", "cpu")).strip()


def test_table4_has_all_six_configurations():
    t = read("table4.csv").set_index("config")
    assert list(t.index) == list(paper.TABLE4_ORDER)


def test_the_model_card_quotes_the_shipped_models_memory_record():
    """docs/model-card.md and docs/memory-study.md quote results/cpu/memory_shipped.json (``mosslib memory
    --json`` on the shipped model), not page 05's memory.json of Table 1's MOSS."""
    import json

    path = RESULTS / "memory_shipped.json"
    if not path.exists():
        pytest.skip(f"{path} is not committed")
    rec = json.loads(path.read_text())
    assert "mosslib/weights/moss_cpu.pt" in rec["checkpoint"]
    card = (REPO / "docs" / "model-card.md").read_text(encoding="utf-8")
    study = (REPO / "docs" / "memory-study.md").read_text(encoding="utf-8")
    alive, dense = rec["usage"]["alive"], rec["ablation"]["mean"]["dense"]
    assert f"{alive} of the 512 items" in card and f"{alive} of 512 items" in study
    assert f"{dense:+.2f} dB dense" in card and f"| {dense:+.2f} [" in study
    assert f"| {rec['trained']['dense']:.2f} | {rec['trained']['sparse']:.2f} |" in study


ABSOLUTE = re.compile(r"(?<![\w$.])/(?:work|home|root|Users|tmp|mnt)/|\.\./shared/|[A-Za-z]:\\\\")


def test_committed_results_carry_no_machine_paths():
    """Results name their data as ``$DATA_ROOT/...`` and files relative to the checkout: an
    absolute path of the machine that made them means nothing elsewhere."""
    files = [*(REPO / "results").rglob("*"), *(REPO / "docs").rglob("*"), REPO / "README.md"]
    for path in sorted(files):
        if path.is_file() and path.suffix in (".csv", ".md", ".json", ".txt", ".html"):
            hit = ABSOLUTE.search(path.read_text(encoding="utf-8"))
            assert hit is None, f"{path.relative_to(REPO)}: {hit.group(0)!r}"


def test_results_write_portable_data_paths(tmp_path):
    from mosslib.measure import places, tables
    from mosslib.method.profiles import make_config

    cfg = make_config("cpu", "full", data_root=str(tmp_path / "data"),
                      overrides=[f"data.unlabeled={tmp_path / 'data' / 'DDN-SIRR' / 'real_input'}"])
    text = tables.data_description(cfg)
    assert str(tmp_path) not in text and text.startswith("$DATA_ROOT: ")
    assert "D_U = $DATA_ROOT/DDN-SIRR/real_input" in text
    assert places.portable_path(places.repo_root() / "mosslib" / "weights" / "moss_cpu.pt") == "mosslib/weights/moss_cpu.pt"
    assert places.portable_path(tmp_path / "data" / "DDN-SIRR", tmp_path / "data") == "$DATA_ROOT/DDN-SIRR"
    assert places.portable_path("/elsewhere/x/model.pt") == "model.pt"
