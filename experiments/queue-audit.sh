#!/bin/sh
# Issue 20's two reruns, one after the other, at the lowest priority, two runs at a time. Resumable:
# run it again after any interruption and each sweep skips its finished runs and resumes the others
# from their checkpoints.
#
#   experiments/queue-audit.sh [RESULTS_CHECKOUT]
#
# The code and the study files are this script's checkout (give it a checkout of its own, e.g. a
# detached `git worktree`, so edits elsewhere cannot change code under running workers); the run
# folders and tables go to RESULTS_CHECKOUT/results/<study> (default: this checkout). The report's
# augmentation (augmentation_student, 10 runs) goes first: it ends in hours, the stopping readings
# (fine_tuning_readings, 60 runs of up to 200 epochs) at most about 4.5 hours, two runs at a time.
#
# Issue 20's queue, started (and restarted) as:
#   git worktree add --detach /work/wt/runs20 COMMIT && make -C /work/wt/runs20 install   # once
#   cd /work/wt/runs20 && nohup sh experiments/queue-audit.sh /work/wt/i20 > queue.log 2>&1 &
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-$here}
for study in augmentation_student fine_tuning_readings; do
    nice -n 19 "$here/.venv/bin/mnistlab" sweep "$here/experiments/$study.toml" --out "$target/results/$study" \
        --jobs 2 --no-progress || exit 1
done
