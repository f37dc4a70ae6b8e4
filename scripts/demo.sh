#!/usr/bin/env bash
# The main job on one video: fetch the models once, then analyse it with fa-run.
# Usage: scripts/demo.sh VIDEO OUTDIR   (make demo runs it on a sample clip)
set -euo pipefail
video=${1:?usage: scripts/demo.sh VIDEO OUTDIR}
out=${2:-demo}
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$here/.venv/bin:$PATH"

echo "== models: downloaded once into the model store (needs network the first time)" >&2
fa-models fetch retinaface au fer va align align-meta

echo "== analysing $video (every 5th frame) into $out/results" >&2
fa-run "$video" -o "$out/results" --every 5 --progress
echo "== report" >&2
cat "$out"/results/facial_analysis_report_*.txt
