#!/usr/bin/env bash
# Start or resume, in the background, the long `cpu`-profile runs on the real data: the book's
# cpu tables and the shipped model come from them. Safe to call again: a run that is already
# training refuses a second trainer (lock), and a finished run is left alone.
#   DATA_ROOT=../shared/data bash scripts/cpu_run.sh [CONFIG ...]   (default CONFIG: full)
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
    out=$("$PY" -c "
from mosslib.profiles import make_config
from mosslib.experiments import run_dir
print(run_dir(make_config('cpu', '$cfg', data_root='$DATA_ROOT'), '$RUNS'))")
    if [ -f "$out/done.json" ]; then echo "$cfg: finished ($out)"; continue; fi
    mkdir -p "$(dirname "$out")"
    echo "$cfg: training into $out (log: $RUNS/cpu/$cfg.log)"
    OMP_NUM_THREADS=$THREADS setsid nohup nice -n 5 "$PY" -m mosslib train --profile cpu --config "$cfg" \
        --data "$DATA_ROOT" --out "$out" --resume --quiet >>"$RUNS/cpu/$cfg.log" 2>&1 </dev/null &
done
