"""scripts/rehash_runs.py: run folders cached under an older hash are renamed to the current one."""
import json
import runpy
from pathlib import Path

from mosslib.method.profiles import make_config
from mosslib.method.runs import run_dir
from mosslib.model.config import to_dict

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rehash_runs.py"


def test_old_run_folders_get_their_current_names(tmp_path, capsys):
    cfg = make_config("smoke", "full", data_root="")
    saved = to_dict(cfg)
    del saved["optim"]["select_min_labeled"]  # a configuration saved before the field existed
    old = tmp_path / "smoke" / "full-0123456789"
    old.mkdir(parents=True)
    (old / "config.json").write_text(json.dumps(saved))
    (old / "done.json").write_text("{}")
    current = run_dir(cfg, tmp_path)
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main([str(tmp_path), "--dry-run"]) == 0 and old.is_dir()
    assert main([str(tmp_path)]) == 0
    assert not old.exists() and (current / "done.json").is_file()
    assert main([str(tmp_path)]) == 0 and current.is_dir()  # a second pass changes nothing
