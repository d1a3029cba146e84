"""evaluate(): accuracy, loss, per-class precision and recall and the confusion matrix, checked on
hand-made cases whose answers are worked out by hand."""

import json

import numpy as np
import pytest

from mnistlab.evaluate import confusion_matrix, evaluate, format_report
from mnistlab.inference import Model
from mnistlab.nn import Network


def argmax_network(classes=4):
    """A one-layer network whose logits are the input pixels / 255: it predicts the brightest pixel."""
    network = Network.initialized([classes, classes], "zero", np.random.default_rng(0))
    network.tensors()["dense.0.weight"][...] = np.eye(classes, dtype=np.float32)
    return Model(network)


def images_predicting(predictions, classes=4):
    """uint8 images, one per prediction, whose brightest pixel is that class."""
    images = np.full((len(predictions), classes), 10, np.uint8)
    images[np.arange(len(predictions)), predictions] = 200
    return images


# labels:      0  0  1  1  1  2  2  2
# predictions: 0  1  1  1  0  2  0  1      (class 3 never occurs and is never predicted)
LABELS = np.array([0, 0, 1, 1, 1, 2, 2, 2], np.uint8)
PREDICTIONS = [0, 1, 1, 1, 0, 2, 0, 1]


@pytest.fixture
def result():
    return evaluate(argmax_network(), images_predicting(PREDICTIONS), LABELS)


def test_confusion_matrix_counts_true_rows_against_predicted_columns(result):
    assert result["confusion_matrix"] == [[1, 1, 0, 0],
                                          [1, 2, 0, 0],
                                          [1, 1, 1, 0],
                                          [0, 0, 0, 0]]


def test_accuracy_is_the_fraction_predicted_right(result):
    assert result["examples"] == 8
    assert result["accuracy"] == 4 / 8


def test_precision_is_right_over_predicted_and_recall_right_over_true_none_where_undefined(result):
    assert result["precision"] == pytest.approx([1 / 3, 2 / 4, 1 / 1, None])
    assert result["recall"] == pytest.approx([1 / 2, 2 / 3, 1 / 3, None])
    assert result["precision"][3] is None and result["recall"][3] is None


def test_a_class_that_occurs_but_is_never_predicted_has_recall_0_and_no_precision():
    labels = np.array([0, 1, 3], np.uint8)
    result = evaluate(argmax_network(), images_predicting([0, 1, 1]), labels)
    assert result["recall"][3] == 0.0
    assert result["precision"][3] is None
    assert result["precision"][1] == 0.5


def test_loss_is_the_mean_cross_entropy_of_the_softmax_of_the_logits(result):
    logits = images_predicting(PREDICTIONS).astype(np.float64) / 255
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(8), LABELS].mean()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)


def test_a_perfect_classifier_has_a_diagonal_matrix_and_all_scores_1():
    labels = np.array([0, 1, 2, 3, 3], np.uint8)
    result = evaluate(argmax_network(), images_predicting(labels), labels)
    assert np.array_equal(np.array(result["confusion_matrix"]), np.diag([1, 1, 1, 2]))
    assert result["accuracy"] == 1.0
    assert result["precision"] == result["recall"] == [1.0, 1.0, 1.0, 1.0]


def test_the_result_is_plain_json(result):
    assert json.loads(json.dumps(result)) == result


def test_confusion_matrix_function_on_ten_classes():
    counts = confusion_matrix(np.array([9, 9, 0, 5]), np.array([9, 0, 0, 5]))
    assert counts.shape == (10, 10)
    assert counts[9, 9] == 1 and counts[9, 0] == 1 and counts[0, 0] == 1 and counts[5, 5] == 1
    assert counts.sum() == 4


def test_the_report_shows_accuracy_a_dash_for_undefined_scores_and_the_matrix_rows(result):
    text = format_report(result)
    lines = text.splitlines()
    assert lines[0].startswith("accuracy 50.00% on 8 images (loss ")
    assert f"(loss {result['loss']:.4f})" in lines[0]
    row3 = next(line for line in lines if line.split()[:1] == ["3"] and "%" in line)
    assert row3.count("-") == 2  # precision and recall undefined for class 3
    class2 = next(line for line in lines if line.split()[:1] == ["2"] and "%" in line)
    assert class2.split() == ["2", "100.00%", "33.33%"]
    matrix_rows = lines[-4:]
    assert [row.split() for row in matrix_rows] == [["0", "1", "1", "0", "0"], ["1", "1", "2", "0", "0"],
                                                    ["2", "1", "1", "1", "0"], ["3", "0", "0", "0", "0"]]
