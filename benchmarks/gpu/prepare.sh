#!/usr/bin/env bash
# Prepare what travels to a bare GPU machine for benchmarks/gpu/run.sh (run here, with
# network): wheels for its Python of what it lacks, fatools' own wheel, and the copies
# of ../shared's files the run needs, all in benchmarks/gpu/carry/ (git-ignored), which
# the device tool carries beside the working tree (at most 64 MiB).
#
#   benchmarks/gpu/prepare.sh [PYTHON_VERSION]      (default 3.12, the lent machine's)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${FATOOLS_SHARED:-$ROOT/../shared}
PYV=${1:-3.12}
CARRY=$HERE/carry
PY=${PYTHON:-python3}
# What the GPU machine lacks (it has torch, torchvision, numpy, opencv, onnxruntime,
# pandas, matplotlib, click, timm, huggingface_hub, pytest): facetorch without its
# stale torch cap, PyAV, the configuration stack and the small pure-Python ones.
# Versions as on the tested current stack (omegaconf 2.4 would want another antlr4).
PACKAGES=(av orjson "facetorch==0.6.2" "hydra-core==1.3.8" "omegaconf>=2.3,<2.4" codetiming gdown
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
