"""Global average pooling: each channel's mean over the map; backward matches finite differences."""

import numpy as np

from layer_checks import check_layer_gradients
from mnistlab.nn.global_pool import GlobalAvgPool


def test_output_is_each_channels_mean_over_the_map():
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    layer = GlobalAvgPool((4, 5, 6), dtype=np.float64)
    assert layer.out_shape == (6,)
    np.testing.assert_allclose(layer.forward(x), x.mean(axis=(1, 2)), rtol=1e-12)


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    check_layer_gradients(GlobalAvgPool((3, 2, 4), dtype=np.float64), rng.standard_normal((2, 3, 2, 4)), rng)
