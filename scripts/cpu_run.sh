#!/usr/bin/env bash
# Start or resume, in the background, the long `cpu`-profile runs on the real data: the book's
# cpu tables and the shipped model come from them. Safe to call again: a run that is already
# training refuses a second trainer (lock), and a finished run is left alone.
#   DATA_ROOT=../shared/data bash scripts/cpu_run.sh [CONFIG ...]   (default CONFIG: full)
# Other configurations (no_selftrain, no_tv) start from the full run's pre-training checkpoint
# once it exists (exact: pre-training does not depend on their settings), else from scratch.
# Runs live outside the work tree (MOSSLIB_RUNS, default ~/.cache/mosslib/runs) so they survive
# a fresh checkout; logs go to $MOSSLIB_RUNS/cpu/<config>.log; progress is in <run>/log.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_ROOT=${DATA_ROOT:-../shared/data}
RUNS=${MOSSLIB_RUNS:-$HOME/.cache/mosslib/runs}
THREADS=${THREADS:-1}
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(full)
for cfg in "${configs[@]}"; do
    read -r out src < <("$PY" -c "
from mosslib.profiles import make_config
from mosslib.experiments import run_dir, pretrained_sibling
cfg = make_config('cpu', '$cfg', data_root='$DATA_ROOT')
print(run_dir(cfg, '$RUNS'), pretrained_sibling(cfg, '$RUNS') or '')")
    if [ -f "$out/done.json" ]; then echo "$cfg: finished ($out)"; continue; fi
    mkdir -p "$(dirname "$out")"
    echo "$cfg: training into $out (log: $RUNS/cpu/$cfg.log)"
    OMP_NUM_THREADS=$THREADS setsid nohup nice -n 5 "$PY" -m mosslib train --profile cpu --config "$cfg" \
        --data "$DATA_ROOT" --out "$out" --resume --quiet ${src:+--fork-from "$src"} >>"$RUNS/cpu/$cfg.log" 2>&1 </dev/null &
done
