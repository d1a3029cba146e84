#!/bin/sh
# Issue 20's two reruns at the lowest priority, two runs at a time. Resumable: run it again after any
# interruption and each sweep skips its finished runs and resumes the others from their checkpoints.
#
#   experiments/queue-audit.sh [RESULTS_CHECKOUT]
#
# The code and the study files are this script's checkout (give it a checkout of its own, e.g. a
# detached `git worktree`, so edits elsewhere cannot change code under running workers); the run
# folders and tables go to RESULTS_CHECKOUT/results/<study> (default: this checkout). The report's
# augmentation (augmentation_student, 10 runs) goes first; as soon as at most one of its runs is left,
# the stopping readings (fine_tuning_readings, 60 runs of up to 200 epochs) start beside it, so that no
# core idles through its last run (its composed runs take 135-139 epochs; three processes share the two
# cores for that overlap).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$here}
out=$target/results
nice -n 19 "$here/.venv/bin/mnistlab" sweep "$here/experiments/augmentation_student.toml" \
    --out "$out/augmentation_student" --jobs 2 --no-progress &
first=$!
while kill -0 $first 2>/dev/null; do
    [ "$(ls "$out"/augmentation_student/runs/*/seed*/metrics.json 2>/dev/null | wc -l)" -ge 9 ] && break
    sleep 60
done
nice -n 19 "$here/.venv/bin/mnistlab" sweep "$here/experiments/fine_tuning_readings.toml" \
    --out "$out/fine_tuning_readings" --jobs 2 --no-progress || exit 1
wait $first
