"""Make the reference runs that tests/test_reference.py compares today's training against, bit for bit.

Made once with the code before the layer refactor (issue 24), from a checkout of it:
    PYTHONPATH=<old checkout>/src python tests/data/reference/make.py tests/data/reference
Each run trains on the first 300 training and 100 test images of the bundled MNIST (the tests' tiny set);
its history.csv and model.safetensors are kept here, the rest is thrown away. The runs named in
INTERRUPTED are also trained again and stopped after their first epoch: their checkpoint.safetensors
(``mnistlab-checkpoint/1``) is kept as ``checkpoint-epoch1.safetensors``, for resuming with newer code.
"""

import shutil
import sys
import tempfile
from pathlib import Path

from mnistlab import api
from mnistlab.config import from_values
from mnistlab.data import Dataset, export_csv, load_dataset
from mnistlab.run import start_run

TRAIN_ROWS, TEST_ROWS = 300, 100
# name -> settings: together they cover every optimizer path, dropout, decay and restored weights. Made when
# no augmentation was the default; it is given with each now, so the same settings mean the same run.
RUNS = {name: {"augment": "none", **settings} for name, settings in {
    "sgd-nesterov": dict(hidden=[16, 8], epochs=3, batch_size=8, dropout=0.2, weight_decay=1e-3,
                         stop="patience", stop_k=1, lr=0.05, seed=3),
    "sgd-plain": dict(hidden=[12], epochs=2, batch_size=16, momentum=0.0, weight_decay=1e-3,
                      activation="sigmoid", init="xavier", schedule="constant", lr=0.5, seed=1),
    "adam": dict(hidden=[10, 10], epochs=2, batch_size=32, optimizer="adam", lr=0.003,
                 activation="tanh", weight_decay=1e-4, schedule="step", step_size=1, seed=2),
    "sgd-heavy-ball": dict(hidden=[8], epochs=2, batch_size=7, nesterov=False, activation="leaky_relu",
                           dropout=0.1, seed=4),
}.items()}
INTERRUPTED = ("sgd-nesterov", "adam")


class Stop(Exception):
    pass


def stop(out_dir):
    raise Stop


def tiny_csvs(folder):
    mnist = load_dataset()
    dataset = Dataset(mnist.train_images[:TRAIN_ROWS], mnist.train_labels[:TRAIN_ROWS],
                      mnist.test_images[:TEST_ROWS], mnist.test_labels[:TEST_ROWS])
    return export_csv(dataset, folder)


def main(out):
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv = tiny_csvs(Path(tmp))
        for name, settings in RUNS.items():
            run = api.train(out=Path(tmp) / name, log=None, data=str(train_csv), test_data=str(test_csv), **settings)
            (out / name).mkdir(parents=True, exist_ok=True)
            for file in ("history.csv", "model.safetensors"):
                shutil.copy(run.out_dir / file, out / name / file)
        for name in INTERRUPTED:
            config = from_values({"data": str(train_csv), "test_data": str(test_csv), **RUNS[name]}, name)
            try:
                start_run(config, Path(tmp) / f"{name}-stopped", log=lambda message: None, after_epoch=stop)
            except Stop:
                shutil.copy(Path(tmp) / f"{name}-stopped" / "checkpoint.safetensors",
                            out / name / "checkpoint-epoch1.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
