"""The BLAS layer: bound products against NumPy for every memory layout the network uses, the
fallback library, and the epoch loop against single steps."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlab.nn import Network, Sgd
from mnistlab.nn.blas import LIBRARY, Axpy, Gemm, axpy, gemm
from mnistlab.nn.cores import CoreShare, divide
from threadpoolctl import threadpool_info


def layout(a, how):
    """The same values as a, laid out as: C order, F order, or a slice of columns of a wider array."""
    if how in ("C", "F"):
        return np.array(a, order=how)  # a copy
    wide = np.full((a.shape[0], a.shape[1] + 3), np.nan, a.dtype)
    wide[:, 1:-2] = a
    return wide[:, 1:-2]


LAYOUTS = ["C", "F", "slice"]


@settings(max_examples=150, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), k=st.integers(1, 9),
       out_how=st.sampled_from(LAYOUTS), a_how=st.sampled_from(LAYOUTS), b_how=st.sampled_from(LAYOUTS),
       a_t=st.booleans(), b_t=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, 0.25]))
def test_gemm_matches_numpy_in_every_layout(m, n, k, out_how, a_how, b_how, a_t, b_t, dtype, alpha, beta):
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    a0, b0, c0 = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
    # a transposed operand is the transpose of an array laid out the other way round
    a = layout(a0.T, a_how).T if a_t else layout(a0, a_how)
    b = layout(b0.T, b_how).T if b_t else layout(b0, b_how)
    out = layout(c0, out_how)
    gemm(out, a, b, alpha, beta)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, alpha * a0 @ b0 + beta * c0, rtol=tol, atol=tol)


def test_a_bound_gemm_sees_new_values_in_its_arrays():
    rng = np.random.default_rng(1)
    a, b, out = rng.random((3, 4)), rng.random((4, 2)), np.zeros((3, 2))
    product = Gemm(out, a, b)
    for _ in range(3):
        a[...] = rng.random((3, 4))
        product(2.0)
        np.testing.assert_allclose(out, 2 * a @ b, rtol=1e-12)


def test_gemm_of_empty_arrays_is_beta_times_out():
    out = np.ones((0, 3), np.float32)
    gemm(out, np.ones((0, 2), np.float32), np.ones((2, 3), np.float32))
    assert out.shape == (0, 3)
    out = np.ones((2, 3))
    gemm(out, np.ones((2, 0)), np.ones((0, 3)), beta=0.5)
    np.testing.assert_array_equal(out, np.full((2, 3), 0.5))


@pytest.mark.parametrize("out,a,b,message", [
    (np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 2)), "shapes"),
    (np.zeros((2, 2)), np.zeros((2, 2), np.float32), np.zeros((2, 2)), "dtype"),
    (np.zeros((2, 2), int), np.zeros((2, 2), int), np.zeros((2, 2), int), "dtype"),
    (np.zeros((2, 2)), np.zeros((4, 4))[::2, ::2], np.zeros((2, 2)), "unit stride"),
    (np.zeros((2, 2)), np.broadcast_to(np.zeros(2), (2, 2)), np.zeros((2, 2)), "unit stride"),
])
def test_gemm_refuses_what_blas_cannot_read(out, a, b, message):
    with pytest.raises(ValueError, match=message):
        Gemm(out, a, b)


def test_axpy_adds_in_place():
    y, x = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
    axpy(y, -2.0, x)
    np.testing.assert_array_equal(y, np.arange(6).reshape(2, 3) - 2.0)
    with pytest.raises(ValueError):
        Axpy(np.zeros(3), np.zeros(4))


def _train_small(seed=0):
    data = np.random.default_rng(5)
    x, y = data.random((96, 30), dtype=np.float32), data.integers(0, 10, 96)
    net = Network.initialized([30, 20, 10], "he", np.random.default_rng(seed), dropout=0.1)
    loss, correct = net.train_epoch(x, y, 16, Sgd(0.9, True), 0.1, np.random.default_rng(seed))
    return net, loss, correct


def test_the_fallback_library_trains_to_the_same_weights():
    """MNISTLAB_BLAS=scipy makes every product go to SciPy's BLAS; results agree to rounding."""
    script = ("import json, sys; sys.path.insert(0, 'tests'); import test_blas as t; "
              "from mnistlab.nn.blas import LIBRARY; net, loss, _ = t._train_small(); "
              "print(json.dumps([LIBRARY, loss, [w.tolist() for w in net.tensors().values()]]))")
    env = dict(os.environ, MNISTLAB_BLAS="scipy")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True,
                          text=True, check=True)
    library, loss, weights = json.loads(done.stdout)
    assert library == "scipy"
    net, here_loss, _ = _train_small()
    assert loss == pytest.approx(here_loss, rel=1e-5)
    for theirs, ours in zip(weights, net.tensors().values()):
        np.testing.assert_allclose(np.array(theirs), ours, rtol=1e-4, atol=1e-5)


def test_numpy_openblas_is_found_on_a_pip_installed_numpy():
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    if not os.path.isdir(libs) or not any("openblas" in f for f in os.listdir(libs)):
        pytest.skip("this NumPy bundles no OpenBLAS: SciPy's BLAS is the one in use")
    assert LIBRARY == "numpy-openblas"


def test_an_epoch_equals_its_steps_one_by_one():
    data = np.random.default_rng(6)
    x, y = data.random((100, 12), dtype=np.float32), data.integers(0, 4, 100)
    nets = [Network.initialized([12, 8, 4], "xavier", np.random.default_rng(0), "tanh", dropout=0.2)
            for _ in range(2)]
    opts = [Sgd(0.9), Sgd(0.9)]
    rngs = [np.random.default_rng(3), np.random.default_rng(3)]
    seen = []
    loss, correct = nets[0].train_epoch(x, y, 32, opts[0], 0.1, rngs[0],
                                        progress=lambda *totals: seen.append(totals))
    steps = [nets[1].train_step(x[i:i + 32], y[i:i + 32], opts[1], 0.1, rngs[1]) for i in range(0, 100, 32)]
    for a, b in zip(nets[0].tensors().values(), nets[1].tensors().values()):
        assert np.array_equal(a, b)  # the same arithmetic, batch by batch, the short last one included
    assert loss == pytest.approx(sum(s[0] * n for s, n in zip(steps, (32, 32, 32, 4))) / 100, rel=1e-6)
    assert correct == sum(s[1] for s in steps)
    assert seen[-1][0] == 100 and seen[-1][1] == pytest.approx(loss * 100) and seen[-1][2] == correct


def test_accuracy_breaks_ties_like_argmax():
    """With all logits equal (zero weights) argmax says class 0: only the zeros count as correct."""
    net = Network.initialized([5, 3], "zero", np.random.default_rng(0))
    y = np.array([0, 1, 2, 0, 2, 1, 0])
    loss, correct = net.train_step(np.ones((7, 5), np.float32), y, Sgd(), 0.0)
    assert correct == 3
    assert loss == pytest.approx(np.log(3), rel=1e-6)


def test_small_products_train_on_one_thread():
    from mnistlab.nn.blas import PARALLEL_WORK, threads_for
    net = Network.initialized([784, 100, 100, 10], "he", np.random.default_rng(0))
    assert net.largest_product(8) == 8 * 785 * 100
    assert threads_for(net.largest_product(8), 2) == 1
    assert threads_for(PARALLEL_WORK, 3) == 3
    assert threads_for(PARALLEL_WORK, None) == (os.cpu_count() or 1)


# Sharing the cores among mnistlab processes (nn/cores.py) ------------------------------------------

@pytest.mark.parametrize("cores,limits,shares", [
    (2, [2], [2]), (2, [2, 2], [1, 1]), (3, [2, 2], [2, 1]), (4, [4, 1], [3, 1]),
    (2, [2, 2, 2], [1, 1, 1]), (8, [2, 2], [2, 2]), (1, [1], [1]),
])
def test_cores_are_divided_fairly_within_each_process_limit(cores, limits, shares):
    assert divide(cores, limits) == shares


def _share(tmp_path, threads=4):
    share = CoreShare(threads, directory=tmp_path, measure_load=False)
    share.cores = 4  # as if on a 4-core machine, whatever this one has
    return share


def _blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_a_second_training_halves_the_first_ones_threads_at_its_next_epoch(tmp_path):
    before = _blas_threads()
    with _share(tmp_path) as first:
        assert first.threads == 4 and _blas_threads() == 4  # alone: every core
        with _share(tmp_path) as second:
            assert second.threads == 2  # starts on its share at once
            assert first.threads == 4  # the first one looks again only at its next epoch
            assert first.update() == 2
        assert first.update() == 4  # the second one has finished: every core again
    assert _blas_threads() == before
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_a_dead_processs_registration_is_ignored_and_removed(tmp_path):
    script = ("import os, sys; from mnistlab.nn.cores import CoreShare; "
              "s = CoreShare(4, directory=sys.argv[1]).__enter__(); os._exit(0)")  # dies holding it
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    assert len(list(tmp_path.glob("*.lock"))) == 1
    with _share(tmp_path) as share:
        assert share.threads == 4
        assert [m[1] for m in share.members()] == [os.getpid()]
    assert list(tmp_path.iterdir()) == []


def test_sharing_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTLAB_SHARE_CORES", "0")
    with _share(tmp_path) as share:
        with _share(tmp_path) as other:
            assert share.threads == other.threads == 4
    assert list(tmp_path.iterdir()) == []


def test_other_programs_load_is_left_its_cores(tmp_path, monkeypatch):
    share = CoreShare(4, directory=tmp_path)
    share.cores = 4
    monkeypatch.setattr(CoreShare, "_foreign_load", lambda self, pids: 2.6)  # 2.6 cores busy elsewhere
    with share:
        assert share.threads == 1  # 4 - 3 cores
        monkeypatch.setattr(CoreShare, "_foreign_load", lambda self, pids: 0.3)  # a mostly idle core
        assert share.update() == 4


def test_the_foreign_load_is_the_machines_busy_time_less_the_registered_processes(monkeypatch):
    import mnistlab.nn.cores as cores
    hz = os.sysconf("SC_CLK_TCK")
    # over 2 s: the machine busy for 3 core-seconds, of which 1 ours and 0.5 another registered process's
    readings = iter([(0.0, 0, {1: 0, 2: 0}), (2.0, 3 * hz, {1: hz, 2: hz // 2})])
    clock, busy, jiffies = next(readings)
    monkeypatch.setattr(cores.time, "monotonic", lambda: clock)
    monkeypatch.setattr(cores, "busy_jiffies", lambda: busy)
    monkeypatch.setattr(cores, "process_jiffies", lambda pid: jiffies[pid])
    share = CoreShare(2)
    assert share._foreign_load({1, 2}) == 0.0  # nothing measured yet
    clock, busy, jiffies = next(readings)
    assert share._foreign_load({1, 2}) == pytest.approx(0.75)  # (3 - 1 - 0.5) core-seconds / 2 s
