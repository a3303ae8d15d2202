#!/usr/bin/env bash
# GPU acceptance: everything benchbench promises on a GPU, in one command, within 10 minutes on one
# H100/H200. Every output goes under OUTDIR; each step has its own time-out, a failed step does not
# stop the next, and a summary table ends the run (also in OUTDIR/summary.txt).
#
# Usage: benchmarks/gpu_acceptance.sh [--dry-run] [--tiny] OUTDIR
#   --dry-run  print the steps (commands and time-outs) and run nothing
#   --tiny     a minutes-long version (tiny plan, the executor's GPU tests only), e.g. for CI on the
#              simulated GPUs: PYTHONPATH=tests/simgpu benchmarks/gpu_acceptance.sh --tiny OUTDIR
#
# Steps: the machine fingerprint (benchbench info); the GPU-marked tests (pytest -m "gpu or
# multi_gpu"); benchbench run --device all (quick profile); benchmarks/train_step.py --device gpu:0
# against PyTorch with TF32 off on both sides (skipped when torch is not installed); benchbench
# profile resnet_cifar10 --device gpu:0; a deterministic repeat check (two repeats, bit-identical
# weights); a float16 run. PYTHON (default: python) is the interpreter with benchbench installed.
# Exit status: 0 when no step failed, 1 otherwise, 2 for a usage error.
set -u

usage() { echo "usage: $0 [--dry-run] [--tiny] OUTDIR" >&2; exit 2; }
DRY=0; TINY=0; OUT=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --tiny) TINY=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "gpu_acceptance: unknown option $arg" >&2; usage ;;
    *) [ -z "$OUT" ] || usage; OUT="$arg" ;;
  esac
done
[ -n "$OUT" ] || usage

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
cd "$ROOT" || exit 2
if [ "$DRY" = 0 ]; then
  mkdir -p "$OUT" || exit 2
  OUT="$(cd "$OUT" && pwd)"
fi

# The plan: the repository's quick profile, or a tiny one.
if [ "$TINY" = 1 ]; then
  PLAN="$OUT/plan.yaml"
  WORKLOADS="mlp_mnist:small lstm_sine"
  PYTEST_WHAT="tests/executor"
  T_INFO=60; T_TESTS=300; T_RUN=300; T_TRAIN=120; T_PROFILE=120; T_DET=120; T_HALF=120
else
  PLAN="$ROOT/bench.yaml"
  WORKLOADS="mlp_mnist cnn_mnist lenet5_cifar10 lstm_sine resnet_cifar10:depth=18"
  PYTEST_WHAT="tests"
  T_INFO=30; T_TESTS=200; T_RUN=150; T_TRAIN=80; T_PROFILE=50; T_DET=45; T_HALF=45
fi
STEPS=(); STATUS=(); SECONDS_TAKEN=(); LOGS=()

# run_step NAME TIMEOUT_S LOG COMMAND...: run one step with its time-out, record how it ended.
run_step() {
  local name="$1" limit="$2" log="$3"; shift 3
  if [ "$DRY" = 1 ]; then
    printf '%-14s timeout %4ss  %s\n' "$name" "$limit" "$*"
    return 0
  fi
  echo "== $name (time-out ${limit} s): $*"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$log" 2>&1
  rc=$?
  local st="ok"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then st="TIMEOUT"; elif [ $rc -ne 0 ]; then st="FAILED (exit $rc)"; fi
  STEPS+=("$name"); STATUS+=("$st"); SECONDS_TAKEN+=($((SECONDS - t0))); LOGS+=("$log")
  echo "   $st in $((SECONDS - t0)) s; output: $OUT/$log"
}

# skip_step NAME SHORT_REASON LONG_REASON
skip_step() {
  if [ "$DRY" = 1 ]; then printf '%-14s skipped: %s\n' "$1" "$3"; return 0; fi
  STEPS+=("$1"); STATUS+=("skipped: $2"); SECONDS_TAKEN+=(0); LOGS+=("-")
  echo "== $1: skipped ($3)"
}

if [ "$TINY" = 1 ] && [ "$DRY" = 0 ]; then
  cat >"$PLAN" <<'EOF'
# gpu_acceptance.sh --tiny: a few steps of two small workloads
workloads: [mlp_mnist:small, lstm_sine]
devices: all
profile: quick
data: synthetic
profiles:
  quick:
    warmup_steps: 1
    steps: 3
    val_batches: 1
    timeout_s: 240
EOF
fi

BB=("$PY" -m benchbench)
run_step info "$T_INFO" info.txt "${BB[@]}" info
run_step gpu-tests "$T_TESTS" gpu_tests.txt "$PY" -m pytest -m "gpu or multi_gpu" -q -p no:cacheprovider \
  --junitxml "$OUT/gpu_tests.xml" $PYTEST_WHAT
run_step run-all "$T_RUN" run_all.txt "${BB[@]}" run --config "$PLAN" --device all --profile quick \
  --output "$OUT/run_all"
if "$PY" -c "import torch" >/dev/null 2>&1; then
  if [ "$TINY" = 1 ]; then TS_ARGS=(--workload mlp --steps 3 --warmup 1); else TS_ARGS=(--steps 10 --warmup 3); fi
  run_step train-step "$T_TRAIN" train_step.txt "$PY" benchmarks/train_step.py --device gpu:0 "${TS_ARGS[@]}" \
    --json "$OUT/train_step.json"
else
  skip_step train-step "no PyTorch" "PyTorch is not installed; pip install torch in this environment to compare"
fi
# --tiny profiles LeNet5: on simulated GPUs every kernel's C body is interpreted, and ResNet's batch of 64
# takes minutes there
if [ "$TINY" = 1 ]; then PROF_WL=lenet5_cifar10; PROF_ARGS=(--steps 1 --warmup 1); else PROF_WL=resnet_cifar10; PROF_ARGS=(--steps 3 --warmup 2); fi
run_step profile "$T_PROFILE" profile.txt "${BB[@]}" profile "$PROF_WL" --device gpu:0 "${PROF_ARGS[@]}" \
  --json "$OUT/profile.json"
# Deterministic mode, two repeats of one cell: the trained weights and loss curves must be identical.
run_step deterministic "$T_DET" deterministic.txt bash -c '"$1" -m benchbench run --config "$2" --device gpu:0 \
  --workload mlp_mnist:small --deterministic --repeat 2 --output "$3" && "$1" benchmarks/acceptance_repeats.py "$3"' \
  deterministic "$PY" "$PLAN" "$OUT/deterministic"
run_step float16 "$T_HALF" float16.txt "${BB[@]}" run --config "$PLAN" --device gpu:0 --dtype float16 \
  --workload $WORKLOADS --output "$OUT/float16"

[ "$DRY" = 1 ] && exit 0

SIM=$("$PY" -c "import cupy; print('simulated' if getattr(cupy, '_benchbench_simulated', False) else 'real')" 2>/dev/null \
      || echo "none (cupy does not import)")
{
  echo "GPU acceptance summary ($(date -u +%Y-%m-%dT%H:%M:%SZ)); GPUs: $SIM"
  [ "$SIM" = simulated ] && echo "SIMULATED GPUs: the steps ran, but no timing here says anything about a GPU"
  printf '%-14s %-40s %8s  %s\n' step status seconds output
  for i in "${!STEPS[@]}"; do
    printf '%-14s %-40s %8s  %s\n' "${STEPS[$i]}" "${STATUS[$i]}" "${SECONDS_TAKEN[$i]}" "${LOGS[$i]}"
  done
  # The first GPU: each cell's bound verdict (host: the GPU waited for the host), and the kernel
  # launches per step of the same code as the simulated GPUs count them (cupy counts none).
  echo "gpu:0 cells (run-all): bound verdict, host share of issue + final wait"
  "$PY" -c 'import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/*/*.json")):
    for c in json.load(open(f)).get("cells", []):
        if c.get("device") == "gpu:0":
            b = c.get("bound") or {}
            print("  %-28s %-7s %.2f" % (c["workload"], b.get("verdict", "-"), b.get("host_share", float("nan"))))' \
    "$OUT/run_all" 2>&1
  echo "kernel launches per step (simulated count, batch 2):"
  PYTHONPATH="$ROOT/tests/simgpu" BENCHBENCH_SIM_GPUS=1 timeout 300 "$PY" benchmarks/launches.py --batch 2 $WORKLOADS 2>&1
} | tee "$OUT/summary.txt"
for st in "${STATUS[@]}"; do
  case "$st" in ok|skipped*) ;; *) exit 1 ;; esac
done
exit 0
