"""Global average pooling: each channel's mean over the map; backward matches finite differences."""

import numpy as np

from layer_checks import check_layer_gradients, spec, training_step
from mnistlab.nn.global_pool import GlobalAvgPool


def test_output_is_each_channels_mean_over_the_map_in_inference_and_training():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    layer = GlobalAvgPool(spec((6, 4, 5), (6,)), dtype=np.float64)
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(training_step(layer, 3)[0](x), x.mean(axis=(1, 2)), rtol=1e-12)


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    layer = GlobalAvgPool(spec((4, 3, 2), (4,)), dtype=np.float64)
    check_layer_gradients(layer, rng.standard_normal((2, 3, 2, 4)), rng)
