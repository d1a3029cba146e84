"""The architecture spec: parsing with one-line errors, formatting back, and each layer's shape,
parameter count, multiply-adds and training memory, worked out by hand."""

import subprocess
import sys

import pytest

from conftest import SRC
from mnistlab.arch import ArchError, dense_hidden, format_arch, hidden_arch, parse, resolve


@pytest.mark.parametrize("text", ["fc800-fc800", "conv32k5-pool2-conv64k5-pool2-fc128", "conv32k3s2valid-bn-gap",
                                  "conv16k3-bn-drop0.25-flatten-fc10", "fc100-drop0.5-fc50", "bn-fc10"])
def test_a_spec_formats_back_to_the_string_it_was_parsed_from(text):
    assert format_arch(parse(text)) == text


def test_defaults_are_left_out_when_formatting():
    assert format_arch(parse("conv32k5s1same")) == "conv32k5"
    assert parse("conv32k5")[0].values == {"filters": 32, "kernel": 5, "stride": 1, "padding": "same"}


@pytest.mark.parametrize("text, message", [
    ("conv32k0", "arch: 'conv32k0' at token 1: kernel must be >= 1"),
    ("fc800-conv32", "arch: 'conv32' at token 2: needs its kernel (e.g. conv5k5)"),
    ("fc800-fc0", "arch: 'fc0' at token 2: units must be >= 1"),
    ("fc", "arch: 'fc' at token 1: needs its units (e.g. fc5)"),
    ("drop1", "arch: 'drop1' at token 1: rate must be < 1"),
    ("fc80x", "arch: 'fc80x' at token 1: unexpected 'x' after fc"),
    ("lstm64", "arch: 'lstm64' at token 1: unknown layer"),
    ("fc800--fc10", "arch: '' at token 2: unknown layer"),
    ("", "arch: '': empty"),
])
def test_a_bad_token_is_one_line_naming_it_and_its_position(text, message):
    with pytest.raises(ArchError) as caught:
        parse(text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert caught.value.field == "arch"


def test_hidden_sizes_are_short_for_fc_layers_and_back():
    assert hidden_arch((800, 800)) == "fc800-fc800"
    assert dense_hidden("fc800-fc800") == (800, 800)
    assert dense_hidden("fc800-drop0.5") is None


def test_a_dense_network_has_the_mlp_sizes_parameters_and_products_of_its_layers():
    arch = resolve("fc800-fc800", 784, 10, "relu")
    assert arch.input_shape == (784,) and arch.dense_sizes == [784, 800, 800, 10]
    assert [layer.text for layer in arch.layers] == ["fc800", "fc800", "fc10"]
    assert arch.parameter_count == 785 * 800 + 801 * 800 + 801 * 10
    assert arch.macs == 784 * 800 + 800 * 800 + 800 * 10
    assert [layer.activation for layer in arch.layers] == ["relu", "relu", None]
    assert arch.largest_product(8) == 8 * 801 * 800  # the biggest [W; b] product, as blas.threads_for sees it


def test_a_convolutional_spec_follows_its_shapes_through_every_layer():
    arch = resolve("conv32k5-bn-pool2-conv64k3s2valid-gap-fc128", 784, 10, "tanh")
    assert arch.input_shape == (1, 28, 28)
    assert [layer.out_shape for layer in arch.layers] == [
        (32, 28, 28), (32, 28, 28), (32, 14, 14), (64, 6, 6), (64,), (128,), (10,)]
    conv, bn, pool, conv2, gap, fc, last = arch.layers
    assert conv.parameters == {"weight": (32, 1, 5, 5), "bias": (32,)} and conv.parameter_count == 32 * 25 + 32
    assert conv.macs == 32 * 28 * 28 * 25
    assert conv2.macs == 64 * 6 * 6 * 32 * 9
    assert bn.parameters == {"gamma": (32,), "beta": (32,)} and bn.state == {"mean": (32,), "var": (32,)}
    assert pool.parameter_count == 0 and gap.parameter_count == 0
    assert fc.parameters["weight"] == (64, 128) and last.parameters["weight"] == (128, 10)
    # The activation follows the bn that follows a conv, not the conv; the last fc has none.
    assert [layer.activation for layer in arch.layers] == [None, "tanh", None, "tanh", None, "tanh", None]
    assert arch.dense_sizes is None


def test_training_memory_counts_each_layers_step_buffers():
    arch = resolve("fc300-fc100", 784, 10, "relu")
    # first layer: [x, 1]; then [a, 1] and its gradient per hidden layer; the logits; no wide layer.
    assert arch.training_memory(8) == 4 * 8 * (785 + 2 * 301 + 2 * 101 + 10)
    wide = resolve("fc800-fc800", 784, 10, "relu", dropout=0.5)
    # + the 800-800 layer's column-major scratch; + each hidden layer's activation and dropout mask
    assert wide.training_memory(1) == 4 * (785 + 2 * 801 + 2 * 801 + 800 + 2 * 2 * 801 + 10)


@pytest.mark.parametrize("text, features, message", [
    ("conv8k5", 100 + 1, "needs square images, the data has 101 pixels"),
    ("conv8k5valid-conv8k5valid-conv8k5valid-conv8k5valid-conv8k5valid-conv8k5valid-conv8k5valid", 784,
     "'conv8k5valid' at token 7: a 5x5 kernel without padding does not fit a 4x4 input"),
    ("pool2-pool2-pool2-pool2-pool2", 784, "'pool2' at token 5: a 2x2 pool does not fit a 1x1 input"),
    ("fc10-conv8k3", 784, "'conv8k3' at token 2: conv needs images (channels, height, width), gets 10"),
])
def test_a_spec_that_does_not_fit_its_input_names_the_token(text, features, message):
    with pytest.raises(ArchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(text, features)


def test_the_spec_module_imports_no_numpy():
    code = "import sys, mnistlab.arch, mnistlab.config; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(SRC)}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"
