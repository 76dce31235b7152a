#!/usr/bin/env bash
# One training stage on a borrowed GPU (the device tool): MOSS and its supervised twin side by side
# on one GPU (or MOSS alone: TWIN=0), both warm-started from INIT, with the `cpu` profile's data
# in 256x256 crops in bf16, at the paper's batch of 16 (or BATCH); the step count is set from the measured speed, before any validation, so the
# runs end inside BUDGET_S seconds. Writes under $OUT: moss.pt / twin.pt
# (exported, fp16, cards without test scores: the test sets stay here), meta.tgz (configs, logs),
# run.log. scripts/device/README.md says how to prepare the call and what to do with the results.
#   bash scripts/device/gpu_stage.sh BUDGET_S [DEVICE=cuda]
# env: INIT (default the shipped model), PACK (default .gpu/pack), MIN_STEP_S (a floor for the
# planned seconds per step, MOSS beside its twin at batch 16; default 0.115, see scripts/device/README.md),
# BATCH and LR (another batch and its Adam lr; BATCH_RATIO_GUESS its step time over batch 16's, default 1;
# experiments/train-probes/ measures both), TWIN (1; 0 trains MOSS alone), SMOKE_STEPS (40),
# LOCAL_SET and BATCH (a CPU rehearsal: smaller crops and batch, e.g. BATCH=2), N_FORCE,
# EXTRA_S (0; seconds of training that a second call will add: the step count is planned for both),
# FLOOR (unset: off; e.g. 32.159, the shipped model's Rain100L validation group: both runs pass
# over candidates below it, `optim.select_min_labeled`).
#   bash scripts/device/gpu_stage.sh continue BUDGET_S [DEVICE]
# a second call on the same warm machine: resumes the runs in WORK where the first call's time
# limit stopped them, for BUDGET_S more seconds, and exports again (exit 6 if WORK is gone).
set -u
MODE=stage; [ "${1:-}" = continue ] && { MODE=continue; shift; }
BUDGET=${1:-540}; DEV=${2:-cuda}; SMOKE_STEPS=${SMOKE_STEPS:-40}
INIT=${INIT:-mosslib/weights/moss_cpu.pt}; PACK=${PACK:-.gpu/pack}
T0=$(date +%s); el() { echo $(( $(date +%s) - T0 )); }
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
# the device's .git may be stale (the session's first commit): name the commit that trains
[ -s .gpu/commit ] && export MOSSLIB_GIT_COMMIT=$(cat .gpu/commit)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; W=${WORK:-$PWD/runs/gpu-stage}  # in the tree (ignored): the device keeps it between calls
if [ $MODE = continue ]; then
  [ -s "$W/configs" ] || { echo "continue: no stage in $W to continue (a fresh machine? the first call's files are final)"; exit 6; }
else
  rm -rf "$W"; mkdir -p "$W"
fi
exec > >(tee -a "$OUT/run.log") 2>&1
pack() { tar czf "$OUT/meta.tgz" -C "$W" --exclude='*.pt' --exclude=data . 2>/dev/null; }
# the runs of the stage (their commands saved in $W/cmd-*), each stopping itself (--time-limit:
# the step in hand validated and checkpointed) START + 15 s before LIMIT; then the exports
run_stage() {  # $1: LIMIT seconds from now; $2: extra train arguments (--resume)
  local limit=$1 tl=$(( $1 - $(cat "$W/startup_s") - 15 )) c rc
  [ $tl -lt 10 ] && tl=10
  echo "[$(el)s] training: $CONFIGS for at most ${tl}s each (hard limit ${limit}s)"
  for c in $CONFIGS; do
    eval "timeout $limit $(cat "$W/cmd-$c") --time-limit $tl ${2:-}" >> "$W/stage-$c.log" 2>&1 &
    eval "pid_$c=$!"
  done
  for c in $CONFIGS; do eval "wait \$pid_$c"; rc=$?; echo "[$(el)s] $c exited $rc"; tail -2 "$W/stage-$c.log"; done
  python3 -m mosslib export "$W/stage-full" -o "$OUT/moss.pt" > "$W/export-full.log" 2>&1 || cat "$W/export-full.log"
  [ "$CONFIGS" = full ] || python3 -m mosslib export "$W/stage-no_selftrain" -o "$OUT/twin.pt" > "$W/export-twin.log" 2>&1 || cat "$W/export-twin.log"
  pack; ls -la "$OUT"; echo "[$(el)s] done"
}
if [ $MODE = continue ]; then  # a second call on the same warm machine: resume the runs where the first stopped
  CONFIGS=$(cat "$W/configs"); echo "[$(el)s] continue: $CONFIGS in $W"
  run_stage $(( BUDGET - 30 )) --resume; exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import torch, numpy, skimage, PIL, tqdm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'skimage', skimage.__version__)" || exit 3
python3 scripts/device/unpack_data.py "$W/data" "$PACK" || exit 3
echo "[$(el)s] unpacked"
COMMON=(--profile cpu --data "$W/data" --init-from "$INIT" --device "$DEV" --precision bf16 --quiet
  --set optim.pretrain_steps=0 --set data.crop=256 --set data.batch_size=16 --set data.val_extra_rain=dense,heavy
  --set optim.select_teacher=true ${FLOOR:+--set optim.select_min_labeled=$FLOOR} ${LOCAL_SET:-})
# the batch: the paper's 16 unless BATCH (and LR, Adam's lr for it) say otherwise; the probes that
# chose them on earlier stages are in experiments/train-probes/
BATCH_RATIO=1
if [ -n "${BATCH:-}" ] && [ "$BATCH" != 16 ]; then COMMON+=(--set data.batch_size=$BATCH ${LR:+--set optim.lr=$LR}); BATCH_RATIO=${BATCH_RATIO_GUESS:-1}; fi
export BATCH_RATIO
echo "[$(el)s] batch: ${BATCH:-16} (lr ${LR:-as configured})"
# TWIN=0: MOSS alone, without its supervised twin beside it (more steps in the same time)
CONFIGS="full no_selftrain"; [ "${TWIN:-1}" = 0 ] && CONFIGS=full
# 1. smoke + timing: the configurations at once, a few steps, one validation, one export
S0=$(date +%s)
for c in $CONFIGS; do
  python3 -m mosslib train "${COMMON[@]}" --config $c --set optim.steps=$SMOKE_STEPS --set optim.log_every=$((SMOKE_STEPS / 2)) \
    --set optim.val_every=1000 --set optim.ckpt_every=1000 --set optim.select_min_labeled=0 \
    --out "$W/smoke-$c" > "$W/smoke-$c.log" 2>&1 &  # no FLOOR: the smoke tests the export, not the choice
  eval "pid_$c=$!"
done
ok=1; for c in $CONFIGS; do eval "wait \$pid_$c" || { ok=0; echo "smoke $c FAILED"; tail -30 "$W/smoke-$c.log"; }; done
SMOKE_WALL=$(( $(date +%s) - S0 ))
[ $ok = 1 ] || { pack; exit 4; }
python3 -m mosslib export "$W/smoke-full" -o "$W/smoke.pt" > "$W/smoke-export.log" 2>&1 || { echo "smoke export FAILED"; cat "$W/smoke-export.log"; pack; exit 5; }
echo "[$(el)s] smoke ok (wall ${SMOKE_WALL}s)"
# 2. the step count, from the measured speed (fixed before any validation of the real runs)
read -r N DECAY VAL LIMIT < <(CONFIGS="$CONFIGS" python3 - "$W" "$SMOKE_WALL" "$(el)" "$BUDGET" "$SMOKE_STEPS" <<'PY'
import json, os, sys
B = int(os.environ.get("BATCH", "16"))
# the floor was measured beside the twin at batch 16: scaled to the batch; alone, no floor
floor = float(os.environ.get("MIN_STEP_S", "0.115")) * float(os.environ.get("BATCH_RATIO", "1"))
if os.environ.get("TWIN", "1") == "0":
    floor = 0.0
w, wall, now, budget, k = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
steps, over = [], []
for c in os.environ["CONFIGS"].split():
    log = {r["step"]: r for r in map(json.loads, open(f"{w}/smoke-{c}/log.jsonl"))}
    t = lambda s: s * B / log[s]["images_per_s"]  # seconds from the first step to step s
    steps.append((t(k) - t(k // 2)) / (k - k // 2))
    over.append(wall - t(k))  # start-up + one validation + exit
# the smoke's steps overlap the other run's start-up, so they run faster than side by side: floor
step, start = max(max(steps), floor), max(over)
avail = budget - now - start - 30 + float(os.environ.get("EXTRA_S", "0"))  # export and packing; a second call
n = int(avail / (step * 1.08 + 6.0 / 1000) / 500) * 500  # 8 % slack; a validation (two nets) ~ 6 s per 1,000 steps
n = max(500, min(n, 40000))
val = 1000 if n >= 4000 else 500
print(n, (n // 3) // 100 * 100, val, max(60, int(budget - now - 30)))
open(f"{w}/startup_s", "w").write(f"{int(start + 1)}\n")
print(f"plan: smoke step {steps} s (planned {step:.3f}), start-up {over} s, {avail:.0f} s left -> {n} steps", file=sys.stderr)
PY
)
[ -n "${N_FORCE:-}" ] && { N=$N_FORCE; DECAY=$((N / 3)); VAL=$((N / 2)); }
echo "[$(el)s] plan: steps=$N lr_decay_from=$DECAY val_every=$VAL time limit ${LIMIT}s"
# 3. the runs (a run cut by the time limit still leaves its best.pt of the validations so far)
echo "$CONFIGS" > "$W/configs"
for c in $CONFIGS; do
  printf '%q ' python3 -m mosslib train "${COMMON[@]}" --config $c --set optim.steps=$N --set optim.lr_decay_from=$DECAY \
    --set optim.val_every=$VAL --set optim.ckpt_every=$((VAL / 2)) --set optim.log_every=100 --out "$W/stage-$c" > "$W/cmd-$c"
done
run_stage "$LIMIT"
