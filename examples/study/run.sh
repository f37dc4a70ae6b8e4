#!/bin/sh
# The worked study: clips -> fa-run (checked against the design first) -> fa-collect with the
# design and per-person normalisation -> a mixed model.  Run from any folder:
#   sh examples/study/run.sh [WORKDIR]
# FA_RUN_OPTIONS adds fa-run options (the tests give it one thread and small frames).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-study-work}
mkdir -p "$work" && cd "$work"
python "$here/make_clips.py" videos
fa-run videos -o results --design "$here/design.csv" --tasks au,fer,va,embed --every 2 -f csv \
    ${FA_RUN_OPTIONS:-}
fa-collect results -o study.csv --design "$here/design.csv" --normalize person --window 0.2s \
    --long long.csv --participants participants.csv
python "$here/analyse.py" long.parquet valence
