#!/usr/bin/env bash
# Issue 30's memory study at GPU scale, in one device call: for each arm and seed a supervised
# pre-training of P steps, then MOSS (`full`, self-training from P) and its supervised twin
# (`no_selftrain`), both forked from it, to N steps; every run of a phase side by side on one GPU,
# in bf16 at the paper's batch of 16 of 256x256 crops, the `cpu` profile's data, lr fixed.
# P is planned from a measured smoke; N from the time left once the pre-training is done (no
# score is read for either). $OUT receives each run's model chosen on the validation pairs
# (fp32, ARM-sSEED-CONFIG.pt, with its card), meta.tgz (configs, logs, cards) and run.log.
# The test sets stay here: `python experiments/memory_study/gpu.py score DIR` scores the models.
#   bash scripts/device/study_gpu.sh BUDGET_S [DEVICE=cuda]
# env: ARMS ("paper") and SEEDS ("0 1 2"): at most 3 arm-seeds (two models each, and $OUT returns 8
#   files); PACK (.gpu/pack, scripts/device/pack_data.py); SMOKE_STEPS (40); LOCAL_SET (a CPU
#   rehearsal: e.g. '--set data.crop=64 --set data.batch_size=2'); N_FORCE and P_FORCE (fixed steps).
# scripts/device/README.md ("The memory study") says how to prepare the call and read its results.
set -u
BUDGET=${1:-560}; DEV=${2:-cuda}; SMOKE=${SMOKE_STEPS:-40}
ARMS=${ARMS:-paper}; SEEDS=${SEEDS:-0 1 2}; PACK=${PACK:-.gpu/pack}
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
[ -s .gpu/commit ] && export MOSSLIB_GIT_COMMIT=$(cat .gpu/commit)
OUT=${OUT:-/tmp/out}; W=${WORK:-$PWD/runs/gpu-study}
mkdir -p "$OUT"; rm -rf "$W"; mkdir -p "$W/exp"
exec > >(tee -a "$OUT/run.log") 2>&1
pack() { tar czf "$OUT/meta.tgz" -C "$W" --exclude='*.pt' --exclude=data . 2>/dev/null; }
JOBS=(); for a in $ARMS; do for s in $SEEDS; do JOBS+=("$a $s"); done; done
[ ${#JOBS[@]} -le 3 ] || { echo "at most 3 arm-seeds a call (\$OUT returns 8 files); asked ${#JOBS[@]}"; exit 2; }
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 3
python3 scripts/device/unpack_data.py "$W/data" "$PACK" || exit 3
echo "[$(el)s] unpacked; arm-seeds: ${JOBS[*]/ /-s}"
COMMON=(--profile cpu --data "$W/data" --device "$DEV" --precision bf16 --quiet --set data.crop=256
  --set data.batch_size=16 --set optim.lr_decay_from=0 ${LOCAL_SET:-})
PIDS=()
# launch NAME CONFIG ARM SEED STEPS PRETRAIN VAL LIMIT [train options]: one run in the background;
# a compressed Gumbel anneal reaches 0.03 at step ANNEAL (the same in a pre-training and its forks)
launch() {
  local name=$1 config=$2 arm=$3 seed=$4 steps=$5 pre=$6 val=$7 limit=$8; shift 8
  # shellcheck disable=SC2046  # the arm's --set options split into words on purpose
  timeout $(( limit + 60 )) python3 -m mosslib train "${COMMON[@]}" --config "$config" --seed "$seed" \
    $(python3 experiments/memory_study/gpu.py settings "$arm" "$ANNEAL") --set optim.steps="$steps" \
    --set optim.pretrain_steps="$pre" --set optim.val_every="$val" --set optim.ckpt_every="$val" \
    --set optim.log_every=$(( SMOKE / 4 > 0 ? SMOKE / 4 : 1 )) --time-limit "$limit" "$@" --out "$W/$name" > "$W/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_all() {  # wait for the launched runs; 1 if any failed
  local ok=0 p; for p in "${PIDS[@]}"; do wait "$p" || ok=1; done; PIDS=(); return $ok
}
# 1. smoke and timing under the second phase's load: per arm-seed, MOSS (self-training from half
# the smoke) and its twin, all at once
S0=$(date +%s); ANNEAL=$SMOKE
for j in "${JOBS[@]}"; do set -- $j
  launch "smoke-$1-s$2-full" full "$1" "$2" "$SMOKE" $(( SMOKE / 2 )) "$SMOKE" 600
  launch "smoke-$1-s$2-no_selftrain" no_selftrain "$1" "$2" "$SMOKE" "$SMOKE" "$SMOKE" 600
done
wait_all || { echo "smoke FAILED"; tail -n 30 "$W"/smoke-*.log; pack; exit 4; }
SMOKE_WALL=$(( $(date +%s) - S0 ))
echo "[$(el)s] smoke ok (wall ${SMOKE_WALL}s)"
# per-step seconds over each smoke's second half (supervised for the twin, self-training for MOSS)
# and start-up (wall minus the steps): from the runs' own logs
plan() {  # plan WHAT: "pretrain" -> P, "selftrain P" -> N (both from the time left now)
  python3 - "$W" "$SMOKE_WALL" "$(el)" "$BUDGET" "$SMOKE" "$@" <<'PY'
import glob, json, sys
w, wall, now, budget, k = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
what = sys.argv[6]
def timing(kind):
    step, start = [], []
    for f in glob.glob(f"{w}/smoke-*-{kind}/log.jsonl"):
        log = {r["step"]: r for r in map(json.loads, open(f)) if "images_per_s" in r}
        t = lambda s: s * BATCH / log[s]["images_per_s"]  # seconds from the first step to step s
        step.append((t(k) - t(k // 2)) / (k - k // 2))
        start.append(wall - t(k))
    return max(step), max(start)
BATCH = json.load(open(glob.glob(f"{w}/smoke-*-full/config.json")[0]))["data"]["batch_size"]
sup, start = timing("no_selftrain")
st, _ = timing("full")
left = budget - now - 45  # exports and packing
if what == "pretrain":  # P supervised steps (K runs, timed under 2K: an upper bound) + as many self-training ones
    p = left / (2 * start + (sup + st) * 1.1)
    print(max(100, int(p / 100) * 100))
else:  # the self-training phase: 2K runs, MOSS beside its twin (the slower of the two)
    p = int(sys.argv[7])
    n = (left - start) / (max(sup, st) * 1.1)
    print(p + max(100, int(n / 100) * 100))
print(f"plan {what}: step {sup:.3f} s supervised, {st:.3f} s self-training, start-up {start:.0f} s, {left:.0f} s left",
      file=sys.stderr)
PY
}
P=${P_FORCE:-$(plan pretrain)}; ANNEAL=$(( 2 * P ))  # the plan: as many self-training steps as pre-training ones
LEFT() { echo $(( BUDGET - $(el) - 45 )); }
echo "[$(el)s] pre-training: $P steps (time limit $(LEFT) s)"
for j in "${JOBS[@]}"; do set -- $j
  launch "pre-$1-s$2" full "$1" "$2" "$P" "$P" "$P" "$(LEFT)"
done
wait_all || echo "a pre-training run failed (its log is in meta.tgz)"
N=${N_FORCE:-$(plan selftrain "$P")}
VAL=$(( (N - P) / 3 > 0 ? (N - P) / 3 : 1 ))
echo "[$(el)s] MOSS and its twin: $N steps, self-training from $P, validation every $VAL (time limit $(LEFT) s)"
for j in "${JOBS[@]}"; do set -- $j
  pre=$W/pre-$1-s$2
  [ -s "$pre/pretrain.pt" ] || { echo "$1 seed $2: no pretrain.pt (the pre-training stopped early); skipped"; continue; }
  for c in full no_selftrain; do
    launch "$1-s$2-$c" "$c" "$1" "$2" "$N" "$P" "$VAL" "$(LEFT)" --fork-from "$pre"
  done
done
wait_all || echo "a run failed or stopped (its log is in meta.tgz)"
for j in "${JOBS[@]}"; do set -- $j
  for c in full no_selftrain; do
    run=$W/$1-s$2-$c
    [ -d "$run" ] || continue
    tail -n 1 "$run.log"
    python3 -m mosslib export "$run" -o "$W/exp/$1-s$2-$c.pt" --fp32 > "$W/exp/$1-s$2-$c.log" 2>&1 \
      && cp "$W/exp/$1-s$2-$c.pt" "$OUT/" || { echo "export $1-s$2-$c FAILED"; cat "$W/exp/$1-s$2-$c.log"; }
  done
done
pack; ls -la "$OUT"; echo "[$(el)s] done"
