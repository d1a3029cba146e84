"""Every committee figure, from the members' test-set probabilities committed under results/; trains nothing.

A committee is every seed of one configuration of a study. Each member's predicted probabilities on its
run's test set are kept as ``results/<study>/probabilities/<configuration>/seed<k>.npz`` (``probabilities``
float32 (n, classes), ``labels`` (n,)): small, and the argmax of float32 probabilities is each member's
answer, which is checked against the test accuracy in its metrics.json. For each committee this prints
each member's test accuracy, their mean ± std, the committee's accuracy by the mean of the probabilities
(what ``mnistlab test --weights A B C`` and ``mnistlab.load([A, B, C])`` compute) and by majority vote
(ties to the highest mean probability), how many test errors the members share (each member's, those made by all
of them, by a majority, by at least one, and the committee's), and the mean, best and worst of every committee of
k of them. Configurations are named by their label in
the study's table.csv.

    python docs/analysis/committees.py [RESULTS_DIR]                  # the figures, from the probability files
    python docs/analysis/committees.py [RESULTS_DIR] --write STUDY    # (re)write STUDY's files from its runs'
                                                                      # model files (needs them on disk)
    python docs/analysis/committees.py [RESULTS_DIR] --from-weights   # also recompute from every model file
                                                                      # present and check the files agree

Each line is ``study | what | figure``. Exit status 1 if a member disagrees with its metrics.json or its
weights, 2 for bad input.
"""

import argparse
import csv
import itertools
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

PROBABILITIES = "probabilities"  # results/<study>/probabilities/<configuration>/seed<k>.npz
AGREE = 1e-6  # the largest difference allowed between committed probabilities and ones recomputed from weights


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def finished_runs(study):
    """(configuration key, seed, run folder) of every finished run of a study folder, from its runs.csv."""
    rows = read_csv(study / "runs.csv")
    return [(r["config"], int(r["seed"]), study / r["run_dir"]) for r in rows if r["status"] == "finished"]


def member_file(study, config, seed):
    return study / PROBABILITIES / config / f"seed{seed}.npz"


def test_probabilities(run_dir):
    """(probabilities float32 (n, classes), labels (n,)) of the run's model on the run's own test set."""
    import mnistlab
    from mnistlab.config import load_toml
    from mnistlab.data import load_dataset

    config = load_toml(run_dir / "config.toml")
    data = load_dataset(config.data, config.test_data)
    probabilities = mnistlab.load(run_dir).predict_proba(data.test_images)
    return probabilities.astype(np.float32), np.asarray(data.test_labels)


def save(path, probabilities, labels):
    """Write one member's file atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, probabilities=probabilities, labels=labels)
    os.replace(tmp, path)


def write(results, name, say):
    """(Re)write the probability file of every finished run of study ``name`` whose model file is here."""
    study = results / name
    written = 0
    for config, seed, run_dir in finished_runs(study):
        if not (run_dir / "model.safetensors").is_file():
            say(name, f"{config} seed{seed}", "no model.safetensors here: not written")
            continue
        probabilities, labels = test_probabilities(run_dir)
        save(member_file(study, config, seed), probabilities, labels)
        written += 1
    say(name, "probability files written", str(written))


def accuracy(probabilities, labels):
    return float((probabilities.argmax(axis=1) == labels).mean())


def vote(members):
    """Majority vote of the members' answers, ties to the class of highest mean probability."""
    classes = members[0].shape[1]
    counts = sum(np.eye(classes, dtype=np.int64)[p.argmax(axis=1)] for p in members)
    mean = sum(p.astype(np.float64) for p in members) / len(members)
    return np.where(counts == counts.max(axis=1, keepdims=True), mean, -1.0).argmax(axis=1)


def committee_accuracy(members, labels):
    """The accuracy of the mean of the members' probabilities (float64 sum of the float32 files)."""
    return accuracy(sum(p.astype(np.float64) for p in members), labels)


def percent(value):
    return f"{100 * value:.2f}%"


def labels_of(study):
    """{configuration key: its label in table.csv} (the key itself where there is no table)."""
    table = study / "table.csv"
    return {row["config"]: row["label"] for row in read_csv(table)} if table.is_file() else {}


def report(results, name, config, say, from_weights):
    """Print one committee's figures (named by the configuration's label); return how many checks failed."""
    study = results / name
    label = labels_of(study).get(config, config)
    seeds = sorted(int(p.stem.removeprefix("seed")) for p in (study / PROBABILITIES / config).glob("seed*.npz"))
    # a run's folder as runs.csv gives it: a long configuration key is shortened in folder names
    run_dirs = {(key, seed): run_dir for key, seed, run_dir in finished_runs(study)}
    members, labels, failed = [], None, 0
    for seed in seeds:
        with np.load(member_file(study, config, seed)) as f:
            probabilities, member_labels = f["probabilities"], f["labels"]
        if labels is not None and not np.array_equal(labels, member_labels):
            raise SystemExit(f"committees.py: {member_file(study, config, seed)}: "
                             f"its labels differ from seed{seeds[0]}'s")
        labels = member_labels
        members.append(probabilities)
        run_dir = run_dirs.get((config, seed), study / "runs" / config / f"seed{seed}")
        recorded = json.loads((run_dir / "metrics.json").read_text())["test_accuracy"]
        own = accuracy(probabilities, labels)
        agrees = round(own * len(labels)) == round(recorded * len(labels))
        failed += not agrees
        say(name, f"{label} seed{seed}: test accuracy", f"{percent(own)} (metrics.json {percent(recorded)}: "
            f"{'agrees' if agrees else 'DISAGREES'})")
        if from_weights and (run_dir / "model.safetensors").is_file():
            again, _ = test_probabilities(run_dir)
            difference = float(np.abs(again - probabilities).max())
            same = difference <= AGREE and np.array_equal(again.argmax(axis=1), probabilities.argmax(axis=1))
            failed += not same
            say(name, f"{label} seed{seed}: recomputed from its weights",
                f"largest difference {difference:.1e}, {'agrees' if same else 'DISAGREES'}")
    if len(members) < 2:
        return failed
    each = [accuracy(p, labels) for p in members]
    spread = f" ± {100 * statistics.stdev(each):.2f}" if len(each) > 1 else ""
    say(name, f"{label}: members' mean (n = {len(each)})", f"{100 * statistics.mean(each):.2f}{spread}%")
    say(name, f"{label}: committee of {len(members)}, mean of probabilities",
        percent(committee_accuracy(members, labels)))
    say(name, f"{label}: committee of {len(members)}, majority vote", percent(float((vote(members) == labels).mean())))
    # What a committee can mend: only the errors that fewer than half of its members make
    wrong = np.array([p.argmax(axis=1) != labels for p in members])
    committee_wrong = sum(p.astype(np.float64) for p in members).argmax(axis=1) != labels
    say(name, f"{label}: test errors of each member; made by all, by a majority, by at least one; of the committee",
        f"{' '.join(str(int(w.sum())) for w in wrong)}; {int(wrong.all(axis=0).sum())}, "
        f"{int((2 * wrong.sum(axis=0) > len(members)).sum())}, {int(wrong.any(axis=0).sum())}; "
        f"{int(committee_wrong.sum())}")
    for k in range(2, len(members)):
        scores = sorted((committee_accuracy([members[i] for i in subset], labels), subset)
                        for subset in itertools.combinations(range(len(members)), k))
        worst, best = scores[0], scores[-1]
        say(name, f"{label}: committees of {k} of {len(members)} ({len(scores)}): mean, best, worst",
            f"{percent(statistics.mean(s for s, _ in scores))}, {percent(best[0])} (seeds "
            f"{' '.join(str(seeds[i]) for i in best[1])}), {percent(worst[0])} (seeds "
            f"{' '.join(str(seeds[i]) for i in worst[1])})")
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="results", metavar="RESULTS_DIR")
    parser.add_argument("--write", metavar="STUDY", help="(re)write STUDY's probability files from its model files")
    parser.add_argument("--from-weights", action="store_true",
                        help="also recompute each member from its model file, where present, and compare")
    args = parser.parse_args(argv)
    results = Path(args.results)

    def say(study, what, figure):
        print(f"{study} | {what} | {figure}", flush=True)

    if args.write:
        if not (results / args.write / "runs.csv").is_file():
            print(f"committees.py: {results / args.write / 'runs.csv'}: no such file (not a study folder)",
                  file=sys.stderr)
            return 2
        write(results, args.write, say)
        return 0
    failed = 0
    for folder in sorted(results.glob(f"*/{PROBABILITIES}/*/")):
        failed += report(results, folder.parent.parent.name, folder.name, say, args.from_weights)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
