"""Make the model shipped with mnistlab (src/mnistlab/pretrained/model.safetensors) from a finished run folder.

The run's model file is copied with a ``pretrained`` entry added to its metadata: the study, configuration
key and seed (read from the folder's place, ``results/<study>/runs/<configuration>/seed<k>``), the git
commit that trained it (``--commit``; runs do not record it), the command that trains it, the SHA-256 of
its training data and its metrics (validation and test accuracy, epochs, seconds, from metrics.json),
and, with ``--robustness``, its accuracy on redrawn test digits as
``python benchmarks/bench_draw.py --only robustness --weights FILE`` prints it (the "drawn %" column).
The file is written atomically and loaded back; the entry is printed.

Run:  python benchmarks/ship_pretrained.py RUN_DIR [--commit SHA] [--robustness PERCENT] [--command TEXT]
          [--out FILE]
e.g.  python benchmarks/ship_pretrained.py results/cnn/runs/<best>/seed0 --commit $(git rev-parse HEAD) \\
          --robustness 99.20
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mnistlab.errors import InputError  # noqa: E402
from mnistlab.pretrained import ship  # noqa: E402

OUT = ROOT / "src" / "mnistlab" / "pretrained" / "model.safetensors"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (model.safetensors, metrics.json)")
    parser.add_argument("--out", default=str(OUT), metavar="FILE", help="where to write it (default: %(default)s)")
    parser.add_argument("--commit", metavar="SHA", help="the git commit that trained the run")
    parser.add_argument("--command", metavar="TEXT",
                        help="the command that trains it (default: mnistlab sweep STUDY for a study's run)")
    parser.add_argument("--robustness", type=float, metavar="PERCENT",
                        help="its accuracy on the redrawn test digits, in percent (bench_draw.py --only robustness)")
    args = parser.parse_args(argv)
    try:
        entry = ship(args.run_dir, args.out, commit=args.commit, command=args.command,
                     robustness=None if args.robustness is None else args.robustness / 100)
    except InputError as e:
        print(f"ship_pretrained: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(entry, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
