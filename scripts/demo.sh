#!/usr/bin/env bash
# The main job on one video: fetch missing models, then frames -> faces -> predictions.
# Usage: scripts/demo.sh VIDEO OUTDIR   (make demo runs it on a sample clip)
set -euo pipefail
video=${1:?usage: scripts/demo.sh VIDEO OUTDIR}
out=${2:-demo}
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$here/.venv/bin:$PATH"
mkdir -p "$out"

echo "== models (downloaded once into ${FATOOLS_MODELS:-~/.cache/fatools/models}; needs network)" >&2
fa-models fetch retinaface au fer va align align-meta

echo "== analysing $video (every 5th frame)" >&2
fa-frames "$video" --every 5 \
  | fa-detect \
  | fa-predict --tasks au,fer,va,align \
  > "$out/analysis.jsonl"

python - "$out/analysis.jsonl" <<'PY'
import collections, json, sys
frames = faces = 0
emotions, aus = collections.Counter(), collections.Counter()
for line in open(sys.argv[1], "rb"):
    record = json.loads(line)
    if record.get("type") == "video":
        continue
    frames += 1
    for face in record.get("faces", []):
        faces += 1
        emotions[face["expression"]["label"]] += 1
        aus.update(face["au"]["active"])
print(f"{frames} frames, {faces} faces; emotions {dict(emotions.most_common(3))}; most active AUs {aus.most_common(5)}")
print(f"records: {sys.argv[1]}")
PY
