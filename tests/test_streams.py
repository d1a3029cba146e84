"""A CNN's step as two streams (nn/streams.py) gives bit for bit the weights of the one-stream step."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mnistlab.arch import resolve
from mnistlab.nn import Adam, Network, Sgd
from mnistlab.nn.blas import can_set_threads
from mnistlab.nn.streams import SERIAL, Streams

EXAMPLES = "conv32k3valid-conv64k3valid-pool2-drop0.25-fc128-drop0.5"
BN_CNN = ("conv32k3valid-bn-conv32k3valid-bn-conv32k5s2same-bn-drop0.4-conv64k3valid-bn-conv64k3valid-bn-"
          "conv64k5s2same-bn-drop0.4-conv128k4valid-bn-drop0.4")
needs_openblas = pytest.mark.skipif(not can_set_threads(), reason="streams need NumPy's OpenBLAS")


def trained(spec, streams, optimizer, images=80, batch=32):
    """Parameters and epoch result after an epoch of ``images`` random images (a shorter last batch)."""
    rng = np.random.default_rng(0)
    x = rng.random((images, 784), dtype=np.float32)
    labels = rng.integers(0, 10, images)
    net = Network.build(resolve(spec, 784, 10), "he", np.random.default_rng(1))
    with threadpool_limits(2, user_api="blas"):
        result = net.train_epoch(x, labels, batch, optimizer, 0.05, np.random.default_rng(2), streams=streams)
    return net.copy_parameters(), result, net


@needs_openblas
@pytest.mark.parametrize("spec", [EXAMPLES, BN_CNN])
@pytest.mark.parametrize("make_optimizer", [lambda: Sgd(momentum=0.9), lambda: Sgd(momentum=0.9, weight_decay=1e-3),
                                            lambda: Sgd(momentum=0.0), lambda: Adam()],
                         ids=["nesterov", "weight-decay", "plain-sgd", "adam"])
def test_two_streams_train_a_cnn_to_the_same_bits_as_one(spec, make_optimizer):
    one, result_one, _ = trained(spec, False, make_optimizer())
    two, result_two, net = trained(spec, True, make_optimizer())
    assert net._streams is not None  # the streams did run
    assert result_two == result_one
    assert one.keys() == two.keys()
    for name in one:
        assert np.array_equal(one[name], two[name]), name


@needs_openblas
def test_a_cnn_trains_as_two_streams_by_default_on_two_threads_and_an_mlp_never():
    _, _, cnn = trained(EXAMPLES, None, Sgd(momentum=0.9), images=40)
    assert cnn._streams is not None and cnn._streams.threads == 2
    _, _, mlp = trained("fc32-fc16", None, Sgd(momentum=0.9), images=40)
    assert mlp._streams is None


def test_streams_run_each_part_once_on_two_threads_and_hand_back_the_helpers_error():
    streams = Streams(threads=2)
    seen = []
    streams.run(seen.append)
    assert sorted(seen) == [0, 1]
    assert streams.parts(9) == [(0, 4), (4, 9)] and SERIAL.parts(9) == [(0, 9)]

    def fail_on_the_helper(part):
        if part == 1:
            raise ValueError("helper failed")

    with pytest.raises(ValueError, match="helper failed"):
        streams.run(fail_on_the_helper)
    streams.run(seen.append)  # still serving after an error
    assert sorted(seen) == [0, 0, 1, 1]
    streams.close()
