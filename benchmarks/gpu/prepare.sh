#!/usr/bin/env bash
# Prepare what travels to a bare GPU machine for benchmarks/gpu/run.sh (run here, with
# network): wheels for its Python of what it lacks, fatools' own wheel, and the copies
# of ../shared's files the run needs, all in benchmarks/gpu/carry/ (git-ignored), which
# the device tool carries beside the working tree (at most 64 MiB).
#
#   benchmarks/gpu/prepare.sh [--rehearsal] [PYTHON_VERSION]   (default 3.12, the lent machine's)
#
# --rehearsal also builds (or brings up to date) a virtual environment standing in for the
# machine's own Python, for `benchmarks/gpu/run.sh OUT cpu` here: Python PYTHON_VERSION
# (scripts/find-python) with the machine's packages at its versions (constraints/
# gpu-machine.txt), in $FATOOLS_REHEARSAL_VENV (default ~/.cache/fatools/venvs/gpu-rehearsal),
# which run.sh's cpu mode then uses (5.4 GB; the first build took 15 minutes here).  torch
# is PyPI's 2.11.0, the machine's own +cu130 build with its CUDA libraries and triton
# (3 GB a CPU does not use); TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the
# same release's CPU build instead, where that index can be reached (not from here).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${FATOOLS_SHARED:-$ROOT/../shared}
REHEARSAL=0
if [ "${1:-}" = --rehearsal ]; then
  REHEARSAL=1
  shift
fi
PYV=${1:-3.12}
CARRY=$HERE/carry
PY=${PYTHON:-python3}
# What the GPU machine lacks (it has torch, torchvision, numpy, opencv, onnxruntime,
# pandas, matplotlib, click, timm, huggingface_hub, pytest): facetorch without its
# stale torch cap, PyAV, the configuration stack, plotly (fa-run's default HTML report;
# 9 MiB) and the small pure-Python ones.
# Versions as on the tested current stack (omegaconf 2.4 would want another antlr4).
PACKAGES=(av orjson plotly "facetorch==0.6.2" "hydra-core==1.3.8" "omegaconf>=2.3,<2.4" codetiming gdown
          python-json-logger googleapis-common-protos protobuf
          # gdown's, which huggingface_hub 1.x (httpx) no longer brings
          requests urllib3 idna charset-normalizer certifi beautifulsoup4 soupsieve filelock tqdm pyyaml)

rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$CARRY/shared/models/retinaface-mobilenet0.25" "$CARRY/shared/testdata/faces"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYV" \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --implementation cp -d "$CARRY/wheels" "${PACKAGES[@]}"
# antlr4-python3-runtime 4.9.3 (omegaconf's pin) has no wheel on the index: build it (pure Python).
"$PY" -m pip wheel --quiet --no-deps -w "$CARRY/wheels" "antlr4-python3-runtime==4.9.3"
# fatools itself, as the tree is now (console scripts and all).
rm -rf "$ROOT/build"  # setuptools reuses build/lib: a module deleted from the tree would live on in the wheel
"$PY" -m pip wheel --quiet --no-deps -w "$CARRY/wheels" "$ROOT"
rm -rf "$ROOT/build"
cp "$SHARED/models/retinaface-mobilenet0.25/mobilenet0.25_Final.pth" "$CARRY/shared/models/retinaface-mobilenet0.25/"
cp "$SHARED"/testdata/faces/{family4,grid25,noface}.jpg "$CARRY/shared/testdata/faces/"
du -sh "$CARRY"
size=$(du -sm "$CARRY" | cut -f1)
if [ "$size" -ge 60 ]; then
  echo "prepare.sh: $CARRY is ${size} MiB: over what may travel with the tree (64 MiB in all)" >&2
  exit 1
fi
ls "$CARRY/wheels"

[ "$REHEARSAL" = 1 ] || exit 0
VENV=${FATOOLS_REHEARSAL_VENV:-$HOME/.cache/fatools/venvs/gpu-rehearsal}
TORCH_INDEX=${TORCH_INDEX:-}
# What the machine has that run.sh uses (constraints/gpu-machine.txt pins those whose
# versions are known there; fatools and what the machine lacks come from the carry).
MACHINE=(torch torchvision numpy onnxruntime onnx onnxscript onnx-ir huggingface_hub safetensors
         opencv-python-headless pandas matplotlib click timm pillow scipy pyyaml tqdm requests filelock
         protobuf pytest hypothesis)
if [ ! -x "$VENV/bin/python" ]; then
  py=$("$ROOT/scripts/find-python" "python$PYV")
  echo "$VENV: $py"
  "$py" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$ROOT/constraints/gpu-machine.txt" \
  ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "${MACHINE[@]}"
"$VENV/bin/python" - "$ROOT/constraints/gpu-machine.txt" <<'PY'
import re, sys
from importlib import metadata
pins = dict(re.match(r"([\w.-]+)==(\S+)", line).groups()
            for line in open(sys.argv[1]) if re.match(r"[\w.-]+==", line))
print(f"rehearsal Python {sys.version.split()[0]} at {sys.executable}")
wrong = []
for name, want in pins.items():
    have = metadata.version(name)
    print(f"  {name} {have}")
    if have.split("+")[0] != want:
        wrong.append(f"{name} {have} (the machine has {want})")
if wrong:
    sys.exit("prepare.sh: the rehearsal's versions differ from the machine's: " + ", ".join(wrong))
PY
echo "rehearse with: benchmarks/gpu/run.sh OUT cpu   (it takes $VENV/bin/python)"
