#!/usr/bin/env bash
# The one prepared run of fatools on a GPU machine: install what it lacks from the wheels
# carried beside the tree, build the compute-twin store, run the CUDA tests, the speed
# benchmark with the GPU targets and a torch.profiler table of fa-run defaults, the
# output effects of half precision, and the figures benchmarks/gpu/measure.py gives.
#
#   benchmarks/gpu/prepare.sh              # here, with network: fills benchmarks/gpu/carry/
#   benchmarks/gpu/run.sh OUTDIR [DEVICE]  # there: DEVICE cuda (default), or cpu to rehearse
#
# The rehearsal (cpu) runs on the Python of `prepare.sh --rehearsal`'s environment, which
# holds the machine's versions (constraints/gpu-machine.txt), when PYTHON names none.
#
# Writes at most 8 files into OUTDIR (run.log, tests.txt, speed.txt, speed.json,
# profile.txt, measure.json, effects.json; profile.trace.json only when it is small), each step under its own time limit and all of them under DEADLINE seconds
# (default 480), so that a rerun still fits in the machine's time.  A failed step is
# logged and the next one runs.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu/run.sh OUTDIR [cuda|cpu]}
DEVICE=${2:-cuda}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CARRY=$HERE/carry
REHEARSAL_PY=${FATOOLS_REHEARSAL_VENV:-$HOME/.cache/fatools/venvs/gpu-rehearsal}/bin/python
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ "$DEVICE" = cpu ] && [ -x "$REHEARSAL_PY" ]; then
  PY=$REHEARSAL_PY
else
  PY=python3
fi
# STEP_SCALE multiplies every step's limit and the default DEADLINE: for a rehearsal on a
# small or busy CPU (the limits are sized for the GPU machine's 16 cores).
STEP_SCALE=${STEP_SCALE:-1}
DEADLINE=${DEADLINE:-$((480 * STEP_SCALE))}
export PYTHONUNBUFFERED=1  # a step stopped at its limit still leaves what it printed
WORK=${WORK:-$(mktemp -d /tmp/fatools-gpu-XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec > >(tee -a "$OUT/run.log") 2>&1
cd "$ROOT"

step() {  # step NAME LIMIT_S COMMAND...: run it under the smaller of its limit and what is left
  local name=$1 limit=$(($2 * STEP_SCALE)) left rc started
  shift 2
  left=$((DEADLINE - SECONDS - 5))
  if [ "$left" -lt 20 ]; then
    echo "== $name: skipped, ${left}s left of ${DEADLINE}s"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s, at ${SECONDS}s)"
  started=$SECONDS
  timeout --kill-after=10 "$limit" "$@"
  rc=$?
  echo "== $name: rc=$rc in $((SECONDS - started))s"
  return 0
}

if [ ! -d "$CARRY/wheels" ]; then
  echo "run.sh: $CARRY/wheels is missing: run benchmarks/gpu/prepare.sh first and carry benchmarks/gpu/carry" >&2
  exit 1
fi
if [ "$DEVICE" = cuda ]; then
  SPEED=(--every 1 --frames 120 --rounds 2 --r50-frames 48 --r50-rounds 2 --fp16 --no-memory)
  MEASURE=()
  EFFECTS=(--frames 10 --variants optimize,fp16,det640)
else  # a rehearsal on a CPU: the same steps, tiny sizes
  SPEED=(--quick --frames 2 --rounds 1 --no-r50 --fp16 --no-memory)
  MEASURE=(--quick)
  EFFECTS=(--frames 2 --variants optimize,fp16)
fi

# What the machine lacks goes into a folder of its own, importable through PYTHONPATH,
# beside the Python it has (torch and the rest stay as they are); nothing is fetched.
SITE=$WORK/site
step install 90 "$PY" -m pip install --quiet --no-index --no-deps --disable-pip-version-check \
  --target "$SITE" "$CARRY"/wheels/*.whl
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
export PATH=$SITE/bin:$PATH
export FATOOLS_SHARED=$CARRY/shared
export FATOOLS_MODELS=$WORK/no-models  # nothing downloads: every run names its store
MNET=$CARRY/shared/models/retinaface-mobilenet0.25/mobilenet0.25_Final.pth
TWINS=$WORK/twins

date -u
nvidia-smi 2>&1 || echo "(no nvidia-smi)"
# The Python's own packages (what constraints/gpu-machine.txt pins for the rehearsal).
echo "base python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
PYTHONPATH= "$PY" -m pip list --format=freeze --disable-pip-version-check 2>/dev/null | tr '\n' ' '
echo
fa-models doctor --device "$DEVICE" 2>&1

step twins 150 "$PY" -m benchmarks.twins "$TWINS" --detector both --mnet-pth "$MNET"
step tests 150 env FATOOLS_TWIN_STORE="$TWINS" FATOOLS_GPU_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider -rs \
  tests/test_gpu.py tests/test_out_of_memory.py tests/test_predict_parity.py \
  > "$OUT/tests.txt" 2>&1
tail -n 30 "$OUT/tests.txt"
step speed 210 "$PY" -m benchmarks.speed --device "$DEVICE" "${SPEED[@]}" --store "$TWINS" --work "$WORK/bench" \
  --profile "$OUT/profile.txt" --json "$OUT/speed.json" > "$OUT/speed.txt" 2>&1
tail -n 60 "$OUT/speed.txt"
step measure 120 "$PY" -m benchmarks.gpu.measure --store "$TWINS" --photos "$CARRY/shared/testdata/faces" \
  --device "$DEVICE" --speed-json "$OUT/speed.json" --json "$OUT/measure.json" "${MEASURE[@]}" > /dev/null
step effects 90 "$PY" -m benchmarks.effects --device "$DEVICE" "${EFFECTS[@]}" --store "$TWINS" --work "$WORK/bench" \
  --json "$OUT/effects.json"

# The profile's Chrome trace comes back only when small; the table is always there.
trace=$OUT/profile.trace.json
if [ -f "$trace" ] && [ "$(stat -c %s "$trace")" -gt $((12 * 1024 * 1024)) ]; then
  echo "dropping $trace ($(du -h "$trace" | cut -f1)): over what comes back"
  rm -f "$trace"
fi
ls -la "$OUT"
echo "run.sh: done in ${SECONDS}s"
