#!/usr/bin/env bash
# GPU acceptance: everything benchbench promises on a GPU, in one command, within 8 minutes on one
# H100/H200 (a 480 s total budget, inside a 10-minute command limit). Every output goes under OUTDIR;
# each step has its own time-out, cut to what is left of the total; a failed step does not stop the
# next; OUTDIR/summary.txt gets one line as each step ends.
#
# Usage: benchmarks/gpu_acceptance.sh [--dry-run] [--tiny] OUTDIR
#   --dry-run  print the steps (commands and time-outs) and run nothing
#   --tiny     a minutes-long version (tiny plan, the executor's GPU tests only), e.g. for CI on the
#              simulated GPUs: PYTHONPATH=tests/simgpu benchmarks/gpu_acceptance.sh --tiny OUTDIR
#
# Steps: install (only where benchbench does not import: pip install -e .[test]); a pre-flight that
# names any missing module and stops; a kernel-cache warm-up (one step of every workload on gpu:0, so
# compiling kernels is not timed later); the machine fingerprint (benchbench info); the GPU-marked
# tests; benchbench run --device all (quick profile); benchmarks/train_step.py against PyTorch with
# TF32 off on both sides (skipped without torch); benchbench profile resnet_cifar10; a deterministic
# repeat check on a workload with an embedding gather (bit-identical, and the deterministic path
# must have run); a float16 run; eager mode (--gpu-graphs off) on gpu:0 beside run-all's cells, which
# replay CUDA graphs (--gpu-graphs auto), printed side by side with the host time of one graph launch; the checks of benchmarks/acceptance_checks.py (GPU vs CPU loss
# curves, quiet verdicts, energy and memory plausibility, TF32 off), which also say whether NCCL
# and data parallel were exercised (not on one GPU); the bound verdict of each gpu:0 cell (host:
# the GPU waited for Python); the kernel launches per training step as the simulated GPUs count
# them. PYTHON (default: python3) is the interpreter.
# Exit status: 0 when no step failed, 1 otherwise, 2 for a usage error or a failed pre-flight.
set -u

usage() { echo "usage: $0 [--dry-run] [--tiny] OUTDIR" >&2; exit 2; }
DRY=0; TINY=0; OUT=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --tiny) TINY=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "gpu_acceptance: unknown option $arg" >&2; usage ;;
    *) [ -z "$OUT" ] || usage; OUT="$arg" ;;
  esac
done
[ -n "$OUT" ] || usage

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
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
  T_TOTAL=900
  T_PRE=60; T_WARM=120; T_INFO=60; T_TESTS=300; T_RUN=300; T_TRAIN=120; T_PROFILE=120; T_DET=120; T_HALF=120
  T_CHECK=60; T_BOUND=30; T_LAUNCH=120; T_GRAPHS=120
  LAUNCH_WORKLOADS="$WORKLOADS"
else
  PLAN="$ROOT/bench.yaml"
  WORKLOADS="mlp_mnist cnn_mnist lenet5_cifar10 lstm_sine resnet_cifar10:depth=18"
  PYTEST_WHAT="tests"
  T_TOTAL=480
  T_PRE=15; T_WARM=40; T_INFO=15; T_TESTS=90; T_RUN=120; T_TRAIN=45; T_PROFILE=30; T_DET=40; T_HALF=30
  T_CHECK=20; T_BOUND=5; T_LAUNCH=10; T_GRAPHS=20
  LAUNCH_WORKLOADS="mlp_mnist cnn_mnist lenet5_cifar10 lstm_sine"  # ResNet's interpreted kernels take minutes
fi
STEPS=(); STATUS=(); SECONDS_TAKEN=(); LOGS=()

SUMMARY="$OUT/summary.txt"
START=$SECONDS

# summary_line NAME STATUS SECONDS LOG: one line in OUTDIR/summary.txt, as the step ends.
summary_line() {
  printf '%-14s %-40s %8s  %s\n' "$1" "$2" "$3" "$4" | tee -a "$SUMMARY" >/dev/null
}

# run_step NAME TIMEOUT_S LOG COMMAND...: run one step with its time-out (cut to what is left of the
# total budget), record how it ended, append its summary line.
run_step() {
  local name="$1" limit="$2" log="$3"; shift 3
  if [ "$DRY" = 1 ]; then
    printf '%-14s timeout %4ss  %s\n' "$name" "$limit" "$*"
    return 0
  fi
  local left=$((T_TOTAL - (SECONDS - START)))
  if [ "$left" -lt 5 ]; then
    STEPS+=("$name"); STATUS+=("skipped: out of budget"); SECONDS_TAKEN+=(0); LOGS+=("-")
    summary_line "$name" "skipped: out of budget (${T_TOTAL} s)" 0 "-"
    echo "== $name: skipped (the ${T_TOTAL} s budget is spent)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (time-out ${limit} s): $*"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$log" 2>&1
  rc=$?
  local st="ok"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then st="TIMEOUT"; elif [ $rc -ne 0 ]; then st="FAILED (exit $rc)"; fi
  STEPS+=("$name"); STATUS+=("$st"); SECONDS_TAKEN+=($((SECONDS - t0))); LOGS+=("$log")
  summary_line "$name" "$st" "$((SECONDS - t0))" "$log"
  echo "   $st in $((SECONDS - t0)) s; output: $OUT/$log"
  return $rc
}

# skip_step NAME SHORT_REASON LONG_REASON
skip_step() {
  if [ "$DRY" = 1 ]; then printf '%-14s skipped: %s\n' "$1" "$3"; return 0; fi
  STEPS+=("$1"); STATUS+=("skipped: $2"); SECONDS_TAKEN+=(0); LOGS+=("-")
  summary_line "$1" "skipped: $2" 0 "-"
  echo "== $1: skipped ($3)"
}

if [ "$DRY" = 0 ]; then
  SIM=$("$PY" -c "import cupy; print('simulated' if getattr(cupy, '_benchbench_simulated', False) else 'real')" \
        2>/dev/null || echo "none (cupy does not import)")
  {
    echo "GPU acceptance summary ($(date -u +%Y-%m-%dT%H:%M:%SZ)); GPUs: $SIM; budget ${T_TOTAL} s"
    [ "$SIM" = simulated ] && echo "SIMULATED GPUs: the steps ran, but no timing here says anything about a GPU"
    printf '%-14s %-40s %8s  %s\n' step status seconds output
  } >"$SUMMARY"
fi

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

# Install where the project does not import, then a pre-flight: every module a step needs, or stop.
if [ "$DRY" = 1 ] || ! "$PY" -c "import benchbench" >/dev/null 2>&1; then
  run_step install 120 install.txt "$PY" -m pip install -q -e "$ROOT[test]"
fi
if ! run_step preflight "$T_PRE" preflight.txt "$PY" benchmarks/acceptance_preflight.py; then
  echo "gpu_acceptance: the pre-flight failed: $(tail -n 1 "$OUT/preflight.txt")" >&2
  exit 2
fi
BB=("$PY" -m benchbench)
WARM_PLAN="$OUT/warmup.yaml"
if [ "$DRY" = 0 ]; then
  printf '%s\n' "# kernel-cache warm-up: one step of every workload" "devices: gpu:0" "profile: quick" \
    "data: synthetic" "profiles:" "  quick:" "    warmup_steps: 1" "    steps: 1" "    val_batches: 1" >"$WARM_PLAN"
fi
WARM_WORKLOADS="$WORKLOADS lstm_sine:embed"
[ "$TINY" = 1 ] && WARM_WORKLOADS="mlp_mnist:small"  # the simulator compiles nothing: the step itself is tested
run_step warm-up "$T_WARM" warmup.txt "${BB[@]}" run --config "$WARM_PLAN" --device gpu:0 --workload $WARM_WORKLOADS \
  --output "$OUT/warmup"
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
# Deterministic mode, two repeats of a cell whose gradient scatters (an embedding gather): the
# deterministic path must have run, and the trained weights and loss curves must be identical.
run_step deterministic "$T_DET" deterministic.txt bash -c '"$1" -m benchbench run --config "$2" --device gpu:0 \
  --workload lstm_sine:embed --deterministic --repeat 2 --output "$3" && "$1" benchmarks/acceptance_repeats.py "$3"' \
  deterministic "$PY" "$PLAN" "$OUT/deterministic"
run_step float16 "$T_HALF" float16.txt "${BB[@]}" run --config "$PLAN" --device gpu:0 --dtype float16 \
  --workload $WORKLOADS --output "$OUT/float16"

# Eager against CUDA graphs on gpu:0: run-all replayed a graph wherever the workload's shapes are fixed
# (--gpu-graphs auto); the same plan once more with every operation launched from Python, both printed.
run_step graphs "$T_GRAPHS" graphs.txt bash -c '"$1" -m benchbench run --config "$2" --device gpu:0 --gpu-graphs off \
  --output "$3" >/dev/null && "$1" benchmarks/acceptance_graphs.py "$4" "$3"' graphs "$PY" "$PLAN" "$OUT/eager" \
  "$OUT/run_all"

run_step checks "$T_CHECK" checks.txt "$PY" benchmarks/acceptance_checks.py "$OUT/run_all"

# The first GPU: each cell's bound verdict (host: the GPU waited for the host, so its figure times
# Python and the launch queue), and the kernel launches per step of the same code as the simulated
# GPUs count them (cupy counts none).
run_step bound "$T_BOUND" bound.txt "$PY" -c 'import glob, json, sys
print("gpu:0 cells (run-all): bound verdict, host share of issue + final wait")
for f in sorted(glob.glob(sys.argv[1] + "/*/*.json")):
    for c in json.load(open(f)).get("cells", []):
        if c.get("device") == "gpu:0":
            b = c.get("bound") or {}
            print("  %-28s %-7s %.2f" % (c["workload"], b.get("verdict", "-"), b.get("host_share", float("nan"))))' \
  "$OUT/run_all"
run_step launches "$T_LAUNCH" launches.txt env PYTHONPATH="$ROOT/tests/simgpu" BENCHBENCH_SIM_GPUS=1 \
  "$PY" benchmarks/launches.py --batch 2 $LAUNCH_WORKLOADS

[ "$DRY" = 1 ] && exit 0
{ cat "$OUT/graphs.txt"; cat "$OUT/bound.txt"; echo "kernel launches per step (simulated count, batch 2):"; cat "$OUT/launches.txt"; } \
  2>/dev/null | tee -a "$SUMMARY" >/dev/null
grep -E "^NCCL and data parallel" "$OUT/checks.txt" 2>/dev/null | tee -a "$SUMMARY"
echo "total $((SECONDS - START)) s of ${T_TOTAL} s" | tee -a "$SUMMARY"
cat "$SUMMARY"
for st in "${STATUS[@]}"; do
  case "$st" in ok|skipped*) ;; *) exit 1 ;; esac
done
exit 0
