#!/usr/bin/env bash
# Start or resume, in the background, the long `cpu`-profile runs on the real data: the book's
# cpu tables and the shipped model come from them. Safe to call again: a run that is already
# training refuses a second trainer (lock), and a finished run is left alone.
#   DATA_ROOT=../shared/data bash scripts/cpu_run.sh [CONFIG ...]   (default CONFIG: full)
# Other configurations (no_selftrain, no_tv) start from the full run's pre-training checkpoint
# once it exists (exact: pre-training does not depend on their settings), else from scratch.
# When the profile's budget was raised, a run continues from its shorter predecessor (copied,
# the predecessor is kept). All of this is `mosslib.method.runs.trained`, the book's run cache.
# Runs live outside the work tree (MOSSLIB_RUNS, default ~/.cache/mosslib/runs) so they survive
# a fresh checkout; logs go to $MOSSLIB_RUNS/cpu/<config>.log; progress is in <run>/log.jsonl.
# DRY_RUN=1 prints the commands instead. THREADS (default 1) threads per trainer; SEQUENTIAL=1 trains the configurations one after the
# other in one background job (use it with THREADS=2: two trainers on 2 cores starve each other).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_ROOT=${DATA_ROOT:-../shared/data}
RUNS=${MOSSLIB_RUNS:-$HOME/.cache/mosslib/runs}
THREADS=${THREADS:-1}
SEQUENTIAL=${SEQUENTIAL:-0}
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(full)
commands=()
for cfg in "${configs[@]}"; do
    read -r out < <("$PY" -c "
from mosslib.method.profiles import make_config
from mosslib.method.runs import run_dir
print(run_dir(make_config('cpu', '$cfg', data_root='$DATA_ROOT'), '$RUNS'))")
    if [ -f "$out/done.json" ]; then echo "$cfg: finished ($out)"; continue; fi
    mkdir -p "$(dirname "$out")"
    echo "$cfg: training into $out (log: $RUNS/cpu/$cfg.log)"
    # the head start (a shorter run of the same configuration, or shared pre-training) is looked
    # up when the trainer starts, so a sequential chain sees the runs finished before it
    cmd="OMP_NUM_THREADS=$THREADS nice -n 5 \"$PY\" -c \"
from mosslib.method.runs import trained
trained('cpu', '$cfg', data_root='$DATA_ROOT', runs_dir='$RUNS', quiet=True)\" >>\"$RUNS/cpu/$cfg.log\" 2>&1"
    commands+=("$cmd")
done
[ ${#commands[@]} -gt 0 ] || exit 0
if [ "${DRY_RUN:-0}" = 1 ]; then printf '%s\n' "${commands[@]}"; exit 0; fi
if [ "$SEQUENTIAL" = 1 ]; then
    chain=$(printf '%s; ' "${commands[@]}")
    setsid nohup bash -c "$chain" </dev/null >/dev/null 2>&1 &
else
    for c in "${commands[@]}"; do setsid nohup bash -c "$c" </dev/null >/dev/null 2>&1 & done
fi
