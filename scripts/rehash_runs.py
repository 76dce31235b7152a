"""Rename cached run folders to their configuration's current hash (once, after an upgrade).

Run folders are named ``<ablation>[-...]-<hash>`` by ``mosslib.method.runs.run_dir``. The hash once
left out fields added after older runs were cached; it now covers the whole configuration, so
such runs would be trained again. This renames each folder whose ``config.json`` hashes to a
new name (a folder already there is left alone).

    PYTHONPATH=. .venv/bin/python scripts/rehash_runs.py [RUNS_DIR=runs] [--dry-run]
"""
import json
import sys
from pathlib import Path

from mosslib.method.profiles import config_from_dict
from mosslib.method.runs import run_dir


def main(argv: list[str]) -> int:
    dry = "--dry-run" in argv
    args = [a for a in argv if a != "--dry-run"]
    runs = Path(args[0] if args else "runs")
    for cfg_file in sorted(runs.glob("*/*/config.json")):
        old = cfg_file.parent
        new = run_dir(config_from_dict(json.loads(cfg_file.read_text())), runs)
        if new == old:
            continue
        if new.exists():
            print(f"skip {old}: {new} exists")
            continue
        print(f"{old} -> {new}")
        if not dry:
            old.rename(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
