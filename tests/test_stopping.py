"""Stopping criteria on hand-made histories, and the trainer obeying them (patience restores the best
weights; a non-finite loss stops the run as diverged)."""

import numpy as np
import pytest

from conftest import read_history, read_json, tiny_train_args
from mnistlab.run import load_data
from mnistlab.config import load_toml
from mnistlab.stopping import Early, MaxEpochs, Overfit, Patience, Plateau, make_stopping
from mnistlab.trainer import Trainer
from mnistlab.weights import load_model


def history(train_losses, val_losses=None):
    val_losses = val_losses if val_losses is not None else [1.0] * len(train_losses)
    return [{"epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(zip(train_losses, val_losses))]


def stops_at(criterion, records):
    """The first epoch (1-based) after which ``criterion`` says stop, feeding it the history so far; else None."""
    for n in range(1, len(records) + 1):
        if criterion.should_stop(records[:n]):
            return n
    return None


# ---------------------------------------------------------------- max epochs


def test_max_epochs_stops_exactly_at_the_limit():
    assert stops_at(MaxEpochs(3), history([1.0] * 10)) == 3
    assert MaxEpochs(3).should_stop(history([1.0] * 3)) == "max epochs (3)"


# ---------------------------------------------------------------- early: train < val for k epochs in a row


def early_history(pattern):
    """One epoch per character: '<' train loss below val loss, '=' equal, '>' above."""
    val = {"<": 1.0, "=": 0.5, ">": 0.2}
    return history([0.5] * len(pattern), [val[c] for c in pattern])


@pytest.mark.parametrize("pattern, expected", [
    ("<<<", 3),
    ("<<", None),  # fewer than k epochs
    (">><<<", 5),
    ("<<><<=<<<", 9),  # a '>' and an '=' each break the streak; it fires on the third '<' in a row
    ("<><><><><>", None),
])
def test_early_fires_exactly_after_k_consecutive_epochs_of_train_below_val(pattern, expected):
    assert stops_at(Early(3), early_history(pattern)) == expected


def test_early_says_why_it_stopped():
    assert Early(2).should_stop(early_history("<<")) == "early: training loss below validation loss for 2 epochs"


# ---------------------------------------------------------------- overfit: val rises k epochs while train falls


def test_overfit_fires_when_val_has_risen_k_epochs_in_a_row_while_train_fell():
    train = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    val = [1.0, 0.9, 1.0, 1.1, 1.05, 1.1, 1.2, 1.3]  # rises at 3, 4; falls at 5; rises at 6, 7, 8
    assert stops_at(Overfit(3), history(train, val)) == 8
    assert stops_at(Overfit(2), history(train, val)) == 4


def test_overfit_does_not_fire_when_train_loss_rises_too():
    train = [1.0, 0.9, 0.8, 0.85, 0.7, 0.6, 0.5]  # rises at epoch 4, breaking the streak
    val = [1.0, 1.1, 1.2, 1.3, 1.4, 1.45, 1.5]
    assert stops_at(Overfit(3), history(train, val)) == 7
    assert stops_at(Overfit(4), history(train, val)) is None


def test_overfit_does_not_count_a_flat_validation_loss_as_rising():
    assert stops_at(Overfit(2), history([3.0, 2.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0])) is None


# ---------------------------------------------------------------- patience


def test_patience_fires_k_epochs_after_the_best_validation_loss():
    val = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7]
    assert stops_at(Patience(3), history([1.0] * 6, val)) == 5
    assert Patience(3).should_stop(history([1.0] * 5, val)) == \
        "patience: no better validation loss for 3 epochs (best at epoch 2)"


def test_patience_restarts_its_count_at_each_new_best_and_an_equal_loss_is_not_better():
    val = [1.0, 0.9, 0.95, 0.8, 0.85, 0.8, 0.9]  # best at 4; the 0.8 at 6 only ties it
    assert stops_at(Patience(2), history([1.0] * 7, val)) == 6
    assert stops_at(Patience(3), history([1.0] * 7, val)) == 7


# ---------------------------------------------------------------- plateau


def test_plateau_fires_when_the_std_of_the_window_is_below_tolerance_times_the_mean():
    losses = [1.0, 0.5, 0.3, 0.2, 0.2001, 0.2, 0.2001, 0.2]
    assert stops_at(Plateau(4, 0.001), history(losses)) == 7  # window 0.2, 0.2001, 0.2, 0.2001: std 5e-5 < 2e-4
    assert Plateau(4, 0.001).should_stop(history(losses[:7])) == "plateau: training loss flat over 4 epochs"


def test_plateau_does_not_fire_when_the_std_is_just_above_the_tolerance():
    losses = [1.0, 1.0021, 1.0, 1.0021, 1.0, 1.0021]  # std 0.00105 > 0.001 x mean 1.00105
    assert stops_at(Plateau(4, 0.001), history(losses)) is None
    assert stops_at(Plateau(4, 0.0011), history(losses)) == 4


def test_plateau_is_relative_to_the_size_of_the_loss():
    losses = [5.0, 3.0, 2.0, 2.001, 2.0, 2.001]
    assert stops_at(Plateau(3, 0.001), history(losses)) == stops_at(Plateau(3, 0.001), history(
        [x * 1000 for x in losses])) == 5


def test_plateau_needs_a_full_window():
    assert stops_at(Plateau(10, 0.001), history([1.0] * 9)) is None
    assert stops_at(Plateau(10, 0.001), history([1.0] * 10)) == 10


# ---------------------------------------------------------------- make_stopping combines with max epochs


def test_make_stopping_always_includes_max_epochs_and_only_patience_restores_best():
    assert stops_at(make_stopping("early", 4, k=10), early_history("<" * 20)) == 4
    assert stops_at(make_stopping("early", 40, k=3), early_history("<" * 20)) == 3
    assert [make_stopping(n, 5).restores_best for n in ("none", "early", "overfit", "patience", "plateau")] == \
        [False, False, False, True, False]


# ---------------------------------------------------------------- the trainer obeys its criterion


class ScriptedNetwork:
    """Stands in for a Network: each epoch's training and validation losses come from a script, and
    its one weight counts the epochs trained, so restored weights show which epoch they are from."""

    def __init__(self, train_losses, val_losses):
        self.weight = np.zeros((1, 1))
        self.train_losses, self.val_losses = iter(train_losses), iter(val_losses)

    def largest_product(self, batch_size):
        return batch_size

    def train_epoch(self, x, labels, batch_size, optimizer, learning_rate, rng, progress=None):
        self.weight += 1
        return next(self.train_losses), 0

    def evaluate(self, x, labels):
        return next(self.val_losses), 0.5

    def tensors(self):
        return {"dense.0.weight": self.weight}

    def copy_parameters(self):
        return {"dense.0.weight": self.weight.copy()}

    def set_parameters(self, tensors):
        self.weight[...] = tensors["dense.0.weight"]


def scripted_fit(stopping, train_losses, val_losses):
    network = ScriptedNetwork(train_losses, val_losses)
    trainer = Trainer(network, None, lambda epoch: 0.1, stopping, np.random.default_rng(0), batch_size=10)
    seen = []
    x, y = np.zeros((4, 1), np.float32), np.zeros(4, np.uint8)
    reason = trainer.fit(x, y, x, y, threads=1, on_epoch=lambda t: seen.append(len(t.history)))
    return trainer, reason, seen


def test_the_trainer_stopped_by_patience_puts_back_the_weights_of_the_best_epoch():
    val = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.6]
    trainer, reason, seen = scripted_fit(make_stopping("patience", 100, k=3), [1.0] * 7, val)
    assert reason == "patience: no better validation loss for 3 epochs (best at epoch 2)"
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3, 4, 5]
    assert trainer.network.weight[0, 0] == 2  # the weights after epoch 2, not epoch 5
    assert (trainer.best.val_loss, trainer.best.epoch) == (0.8, 2)
    assert seen == [1, 2, 3, 4, 5]  # on_epoch after every epoch, the last one included


def test_the_trainer_stopped_by_early_keeps_the_last_weights():
    trainer, reason, _ = scripted_fit(make_stopping("early", 100, k=2), [0.5] * 9, [0.4, 0.6, 0.4, 0.6, 0.6, 0.6])
    assert reason.startswith("early")
    assert len(trainer.history) == 5
    assert trainer.network.weight[0, 0] == 5


def test_the_trainer_runs_exactly_max_epochs_and_records_each_epochs_losses():
    trainer, reason, _ = scripted_fit(make_stopping("none", 3), [0.9, 0.8, 0.7, 0.6], [1.0, 0.9, 0.8, 0.7])
    assert reason == "max epochs (3)"
    assert [(r["epoch"], r["train_loss"], r["val_loss"]) for r in trainer.history] == \
        [(1, 0.9, 1.0), (2, 0.8, 0.9), (3, 0.7, 0.8)]


def test_a_non_finite_training_loss_stops_the_trainer_as_diverged_at_that_epoch():
    trainer, reason, seen = scripted_fit(make_stopping("none", 10), [0.9, 0.8, float("nan")], [1.0, 0.9])
    assert reason == "diverged at epoch 3"
    assert len(trainer.history) == 2
    assert seen == [1, 2, 2]  # on_epoch also runs after the diverged epoch, so the caller can record it


def test_a_real_run_stopped_by_patience_saves_the_best_epochs_weights(cli, tiny, tmp_path):
    out = tmp_path / "run"
    result = cli(tiny_train_args(tiny, out, "--epochs", "12", "--stop", "patience", "--stop-k", "2",
                                 "--lr", "0.3", "--schedule", "constant"))
    assert result.code == 0
    rows = read_history(out / "history.csv")
    metrics = read_json(out / "metrics.json")
    best = 1 + int(np.argmin([r["val_loss"] for r in rows]))
    assert metrics["stop_reason"] == f"patience: no better validation loss for 2 epochs (best at epoch {best})"
    assert len(rows) == best + 2 and metrics["best_epoch"] == best
    # The saved model is the best epoch's: its loss on the validation set is that epoch's, not the last one's.
    network, _ = load_model(out / "model.safetensors")
    _, _, val_x, val_y, *_ = load_data(load_toml(out / "config.toml"))
    val_loss, _ = network.evaluate(val_x, val_y.astype(np.intp))
    assert val_loss == pytest.approx(rows[best - 1]["val_loss"], rel=1e-6)
    assert val_loss != pytest.approx(rows[-1]["val_loss"], rel=1e-3)
    assert metrics["val_loss"] == pytest.approx(val_loss, rel=1e-6)  # metrics.json describes the saved model
