#!/usr/bin/env bash
# Issue 30's background training, one job at a time, resumable across sessions:
#   1. the memory study's grid (run.py: screens, then seeds), stopping before HH:MM;
#   2. once the grid is complete, the cpu book's Table 4, then Table 1, then Tables 2-3, over 3 seeds
#      (notebooks 04, 01 and 02 with --seeds 3; a run resumes from its checkpoint within a session,
#      and a finished run is archived in OUT_REPO/results/cpu/runs, restored by the next session's
#      queue: a run cut off by a session's end starts again).
# usage: DATA_ROOT=../shared/data experiments/memory_study/queue.sh HH:MM [RUNS_DIR [OUT_REPO]]
#   RUNS_DIR: the training cache (default runs/study; the book's runs go to RUNS_DIR/book/cpu)
#   OUT_REPO: the checkout whose results/ and figures/ receive the records, tables and figures
#   (default this one); name the main checkout when this runs from a pinned worktree, so finished
#   work lands where it is committed
set -euo pipefail
until_hhmm=${1:?usage: queue.sh HH:MM [RUNS_DIR [OUT_REPO]]}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=$(realpath -m "${2:-${MOSSLIB_STUDY_RUNS:-$repo/runs/study}}")
out=$(realpath "${3:-$repo}")
results=$out/results/study
py=${PY:-$repo/.venv/bin/python}
: "${DATA_ROOT:?set DATA_ROOT to the data root (../shared/data)}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONPATH=$repo
cd "$repo"
"$py" experiments/memory_study/run.py --runs "$runs" --results "$results" --until "$until_hhmm"
if "$py" experiments/memory_study/run.py --runs "$runs" --results "$results" --dry-run | grep -q "would "; then
    echo "[queue] the study's grid is not complete; Table 4's seeds wait"
    exit 0
fi
echo "[queue] study complete: Table 4, then Table 1, then Tables 2-3, over 3 seeds (stops when the session ends; rerun to resume)"
book=(-m mosslib book --profile cpu --data "$DATA_ROOT" --seeds 3 --no-progress --runs "$runs/book"
      --results "$out/results" --figures "$out/figures" --build "$out/build")
# the issue asks Table 4 and Table 1 for 3 seeds by name: they go first. Each finished run is archived
# in results/cpu/runs (commit it): the next session's queue restores it and goes on. Table 1's 3 seeds
# (6,000 steps, bookruns.TABLE1_STEPS) take about 5 h; until they land its D_U verdict comes from the
# same comparison over the study's 3 seeds at 3,000 steps (mosslib.apps.claims)
"$py" "${book[@]}" --only 04
"$py" "${book[@]}" --only 01
exec "$py" "${book[@]}" --only 02
