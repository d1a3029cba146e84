"""The layer protocol (nn/layer.py): a new layer type is one file plus one token in the arch grammar.

A toy ``scale`` layer (y = x * w, one learned weight per input value) is written here as a file of its
own, in a folder outside the package, and registered with one token, as a new file in nn/ plus one line
in arch.TOKENS would be. With nothing else changed it trains, saves, loads, is judged by `mnistlab test`,
predicts through the Python API and the drawing page's API, is estimated and is swept; and its backprop
through a network agrees with finite differences.
"""

import json
import math
import textwrap

import numpy as np
import pytest

from mnistlab import arch

SCALE_LAYER = '''
"""A toy layer: y = x * w, one weight per input value, starting at 1."""

import numpy as np

from mnistlab.nn.layer import simple_parameters


class Scale:
    kind = "scale"

    def __init__(self, spec, dtype=np.float32):
        self.spec, self.name = spec, self.kind
        self.params = {"weight": np.zeros(spec.parameters["weight"], dtype)}
        self.state = {}

    def initialize(self, init, rng):
        self.params["weight"][...] = 1

    def forward(self, x):
        return x * self.params["weight"]

    def plan(self, batch, input_grad):
        return ScaleStep(self, batch, input_grad)


class ScaleStep:
    def __init__(self, layer, batch, input_grad):
        dtype = layer.params["weight"].dtype
        self.layer, self.batch = layer, batch
        self.x = np.zeros((batch, *layer.spec.in_shape), dtype)
        self.dx = np.zeros_like(self.x) if input_grad else None
        self.dw = np.zeros_like(layer.params["weight"])
        self.parameters = simple_parameters(layer, layer.name, {"weight": self.dw})

    def bind(self, above):
        self.y, self.dy = above.x, above.dx

    def forward(self, rng):
        np.multiply(self.x, self.layer.params["weight"], out=self.y)

    def backward(self):
        # dy is the gradient of the batch's summed loss; the optimizer gets the mean's
        np.multiply(self.x, self.dy, out=self.x)
        self.dw[...] = self.x.sum(axis=0) / self.batch
        if self.dx is not None:
            np.multiply(self.dy, self.layer.params["weight"], out=self.dx)
'''


@pytest.fixture
def scale_layer(tmp_path, monkeypatch):
    """The toy layer's file on the import path and its token in the grammar."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "toy_scale.py").write_text(textwrap.dedent(SCALE_LAYER))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setitem(arch.TOKENS, "scale", arch.Token(
        "scale", (), "toy_scale:Scale", parameters=lambda shape, o: {"weight": shape},
        macs=lambda shape, out, o: math.prod(shape)))
    return "scale-fc16"


def test_a_new_layer_type_parses_and_is_costed_from_its_token(scale_layer):
    spec = arch.resolve(scale_layer, 784)
    assert [layer.text for layer in spec.layers] == ["scale", "fc16", "fc10"]
    assert spec.layers[0].parameter_count == 784 and spec.layers[0].macs == 784
    assert spec.parameter_count == 784 + 785 * 16 + 17 * 10


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_a_new_layers_backprop_through_the_network_matches_finite_differences(scale_layer, dropout):
    """Dense below and above another layer type (its copying path), with and without dropout."""
    from mnistlab.nn import Network
    from test_nn import numerical_grad

    rng = np.random.default_rng(3)
    network = Network.build(arch.resolve("fc6-scale-fc5", 4, 3, "tanh", dropout), "he", rng, dtype=np.float64)
    network.tensors()["scale.1.weight"][...] = rng.standard_normal(6)
    x, labels = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)

    def loss():  # the same generator state draws the same dropout masks every time
        return network.gradients(x, labels, np.random.default_rng(6)).loss

    _, grads = network.gradients(x, labels, np.random.default_rng(6))
    assert sorted(grads) == sorted(network.tensors())
    for name, tensor in network.tensors().items():
        np.testing.assert_allclose(grads[name], numerical_grad(loss, tensor), rtol=1e-5, atol=1e-8)
    assert (loss() != network.evaluate(x, labels).loss) == bool(dropout)  # masks drawn in training only


def test_a_new_layer_type_trains_saves_loads_tests_predicts_and_is_served_with_no_other_change(
        scale_layer, tiny, tmp_path, cli):
    import mnistlab
    from fastapi.testclient import TestClient
    from mnistlab.resources import estimate
    from mnistlab.weights import read_metadata
    from mnistlab.web.app import create_app

    run = mnistlab.train(arch=scale_layer, epochs=2, augment="none", data=str(tiny.train_csv),
                         test_data=str(tiny.test_csv), out=tmp_path / "runs" / "scale", log=None)
    assert run.metrics["test_accuracy"] > 0.5  # it learned (10 classes: chance is 0.1)
    meta = read_metadata(run.out_dir / "model.safetensors")
    assert meta["format"] == "mnistlab-net/1" and meta["arch"] == "scale-fc16" and meta["input_shape"] == [784]
    assert (run.out_dir / "config.toml").read_text().count('arch = "scale-fc16"') == 1

    model = mnistlab.load(run.out_dir)
    assert model.arch == "scale-fc16" and not np.all(model.network.tensors()["scale.0.weight"] == 1)  # trained
    images, labels = tiny.dataset.test_images, tiny.dataset.test_labels
    assert np.allclose(model.predict_proba(images).sum(axis=1), 1)
    assert (model.predict(images) == labels).mean() == run.metrics["test_accuracy"]

    result = cli(["test", "--weights", run.out_dir / "model.safetensors", "--data", tiny.test_csv, "--json"])
    assert result.code == 0, result.err
    assert json.loads(result.out)["accuracy"] == run.metrics["test_accuracy"]

    client = TestClient(create_app(run.out_dir / "model.safetensors", tmp_path / "runs"))
    card = client.get("/api/model").json()
    assert card["arch"] == "scale-fc16" and card["sizes"] is None and card["parameters"] == 784 + 785 * 16 + 17 * 10
    answer = client.post("/api/predict", json={"pixels": images[0].reshape(28, 28).tolist()}).json()
    assert answer["digit"] == model.predict(images[0])

    config = mnistlab.config.load_toml(run.out_dir / "config.toml")
    n_val = round(config.val_fraction * len(tiny.dataset.train_labels))
    est = estimate(config, len(tiny.dataset.train_labels) - n_val, n_val, len(labels))
    assert est.weights == sum(t.nbytes for t in model.network.tensors().values())


def test_a_study_can_vary_the_architecture_and_sweep_a_new_layer_type(scale_layer, tiny, tmp_path):
    """The sweep's pieces in this process (each run as a sweep worker runs it, then the tables): a new
    worker process would need the token in arch.py itself, which is where a real layer type puts it."""
    from mnistlab.experiments import load_study
    from mnistlab.experiments.runner import _cost, execute
    from mnistlab.experiments.tables import write_tables

    path = tmp_path / "arch.toml"
    path.write_text(f'name = "arch"\nrepeats = 1\n[base]\ndata = "{tiny.train_csv}"\ntest_data = "{tiny.test_csv}"\n'
                    f'epochs = 1\naugment = "none"\n[[grid]]\narch = ["{scale_layer}", "fc16"]\n')
    study = load_study(path)
    specs = study.runs()
    assert [s.config.spec for s in specs] == ["scale-fc16", "fc16"]
    assert _cost(specs[0].config) > _cost(specs[1].config)  # the scale layer's multiply-adds counted
    rows = [execute(s.config, str(tmp_path / "out" / s.run_dir)) for s in specs]
    assert [r["status"] for r in rows] == ["finished", "finished"], rows
    table = write_tables(study, tmp_path / "out", specs)
    assert [r["status"] for r in table] == ["finished", "finished"]
