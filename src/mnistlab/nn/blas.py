"""The matrix products of the network, called straight into BLAS: this is where speed lives.

Why not ``numpy.matmul`` everywhere (each point measured on a 2-core AMD EPYC, see the README):

- **beta.** A weight update ``W += a * x.T @ delta`` in NumPy writes a temporary the size of W and
  reads it back; BLAS gemm computes ``C = alpha * A @ B + beta * C`` in one pass over W.
- **Call cost.** At batch 8 a step is dozens of small products. ``Gemm`` binds a product to its
  arrays once, so each call passes ready-made pointers (under 1 us of Python) instead of checking
  and converting arrays every time.
- **One library, both cores.** NumPy and SciPy each ship an OpenBLAS with its own thread pool; when
  both pools run threads they spin against each other (an 800-800 epoch at batch 8 once took 138 s
  instead of 8 s). Every product here goes to one library, NumPy's own when it can be found (it is
  newer: 8x784 @ 784x800 takes 179 us there against 323 us in SciPy's), so both cores can work on
  a large product even at batch 8 (that one: 112 us on two threads); small ones stay on one
  (``threads_for``).
- **The GIL.** Calls through ``ctypes`` release it, SciPy's Python wrappers don't.
- **Other processes.** Spinning BLAS threads that wait for a core another process holds made two
  trainings side by side 4.3x slower each instead of 2x: ``thread_limits`` shares the cores out
  among mnistlab processes (and leaves the cores other programs keep busy), see ``cores.py``.

The library is found once, at import: the Fortran ``?gemm``/``?axpy`` of NumPy's bundled OpenBLAS
(the ``scipy-openblas`` build of NumPy's wheels, 64-bit integers), or else SciPy's, through the
function pointers SciPy exports for Cython (``scipy.linalg.cython_blas``, 32-bit integers), which
every SciPy has. ``MNISTLAB_BLAS=scipy`` forces the second. ``LIBRARY`` names the one in use.

BLAS is column-major: a C-contiguous (rows, cols) array is, to BLAS, its transpose, and ``Gemm``
picks whichever view and transpose flag needs no copy. Row-strided views (a slice of columns) are
fine too: BLAS takes the row stride as its leading dimension.
"""

import ctypes
import os
from functools import partial
from pathlib import Path

import numpy as np

from .cores import CoreShare

_LETTER = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
_SCALAR = {"s": ctypes.c_float, "d": ctypes.c_double}


def _numpy_openblas():
    """{'sgemm': function, ...} from NumPy's bundled OpenBLAS, and its integer type; or None."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("*openblas*.so*")) if libs.is_dir() else []:
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by NumPy: this only finds its symbols
        except OSError:
            continue
        for prefix in ("scipy_", ""):  # NumPy's wheels: scipy_sgemm_64_; a plain ILP64 build: sgemm_64_
            names = {f"{p}{op}": f"{prefix}{p}{op}_64_" for p in "sd" for op in ("gemm", "axpy")}
            if all(hasattr(lib, symbol) for symbol in names.values()):
                functions = {name: getattr(lib, symbol) for name, symbol in names.items()}
                threads = f"{prefix}openblas_set_num_threads64_"
                if hasattr(lib, threads):
                    functions["set_threads"] = getattr(lib, threads)
                    functions["set_threads"].argtypes = [ctypes.c_int]
                return functions, ctypes.c_int64
    return None


def _scipy_blas():
    """The same from SciPy's Cython BLAS: function pointers kept in PyCapsules (stable public API)."""
    from scipy.linalg import cython_blas

    get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    functions = {}
    for name, arity in (("sgemm", 13), ("dgemm", 13), ("saxpy", 6), ("daxpy", 6)):
        capsule = cython_blas.__pyx_capi__[name]
        address = get_pointer(capsule, get_name(capsule))
        functions[name] = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * arity)(address)
    return functions, ctypes.c_int


def _load():
    if os.environ.get("MNISTLAB_BLAS", "numpy") != "scipy":
        found = _numpy_openblas()
        if found:
            return "numpy-openblas", *found
    return "scipy", *_scipy_blas()


LIBRARY, _FUNCTIONS, _INT = _load()


# Below this many multiply-adds in a network's largest product (batch x fan_in x fan_out) training
# runs on one thread: handing half of such small products to the other core costs more than it
# saves (a Nesterov step of the 100-100 network at batch 8 took 87 us on one thread, 111 us on
# two; 800-800 at batch 8, 5 million, takes 890 us on one and 560 us on two). Switching the
# thread count per call is no way out: OpenBLAS then puts its idle threads to sleep, and waking
# them made every large call slower than on one thread.
PARALLEL_WORK = 4_000_000


def threads_for(largest_product, threads=None):
    """The BLAS threads to train with: 1 for small products, else ``threads`` (default: every core)."""
    return 1 if largest_product < PARALLEL_WORK else threads or os.cpu_count() or 1


def thread_limits(threads=None):
    """A context setting the BLAS threads: at most ``threads`` (default: every core), and no more than
    this process's share of the cores beside other mnistlab processes and other programs' load.

    Wrap a training loop in it and call ``update()`` on it once per epoch (never per product), so a
    process that started alone gives up cores when another starts and takes them back when it ends::

        with thread_limits(threads) as cores:
            for epoch in ...:
                cores.update()
                ...
    """
    return CoreShare(threads)


def _address(obj):
    return ctypes.c_void_p(ctypes.addressof(obj))


def _pointer(a):
    return ctypes.c_void_p(a.__array_interface__["data"][0])


def _as_blas(a, itemsize):
    """(pointer, leading dimension, transpose flag) for a 2-D array with one unit stride: BLAS reads
    ``op(M)`` with M column-major; a row-major array is the transpose of a column-major one."""
    rows, cols = a.shape
    s0, s1 = a.strides

    def lead(stride, minimum):  # the stride as a leading dimension, if it can be one
        return stride // itemsize if stride % itemsize == 0 and stride >= minimum * itemsize else 0

    if (s0 == itemsize or rows == 1) and (cols == 1 or lead(s1, rows)):
        return _pointer(a), max(lead(s1, rows), rows, 1), b"N"
    if (s1 == itemsize or cols == 1) and (rows == 1 or lead(s0, cols)):
        return _pointer(a), max(lead(s0, cols), cols, 1), b"T"
    raise ValueError(f"BLAS needs one unit stride, got strides {a.strides} for shape {a.shape}")


class Gemm:
    """``out = alpha * a @ b + beta * out``, bound once to fixed arrays, run by calling it.

    Every array is 2-D, of one dtype (float32 or float64), with unit stride along rows or columns
    (C- or F-ordered, or a slice of columns of one). The object keeps the arrays alive.
    """

    def __init__(self, out, a, b):
        if a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
            raise ValueError(f"gemm: shapes {out.shape} = {a.shape} @ {b.shape} do not match")
        if not out.dtype == a.dtype == b.dtype or out.dtype not in _LETTER:
            raise ValueError(f"gemm: need one float dtype, got {out.dtype}, {a.dtype}, {b.dtype}")
        self.arrays = (out, a, b)
        self._trivial = out.size == 0 or a.shape[1] == 0  # then out = beta * out, without BLAS
        if self._trivial:
            return
        size = out.itemsize
        if out.strides[1] == size and out.shape[0] > 1:  # row-major out: out.T = b.T @ a.T
            out, a, b = out.T, b.T, a.T
        c, ldc, flag = _as_blas(out, size)
        if flag != b"N":
            raise ValueError(f"gemm: out must have unit stride, got strides {out.strides}")
        pa, lda, ta = _as_blas(a, size)
        pb, ldb, tb = _as_blas(b, size)
        letter = _LETTER[out.dtype]
        self._function = _FUNCTIONS[letter + "gemm"]
        self._alpha, self._beta = _SCALAR[letter](1.0), _SCALAR[letter](0.0)
        m, n, k = (_INT(v) for v in (out.shape[0], out.shape[1], a.shape[1]))
        self._keep = [ctypes.c_char(ta), ctypes.c_char(tb), m, n, k, *(_INT(v) for v in (lda, ldb, ldc))]
        ta, tb, m, n, k, lda, ldb, ldc = map(_address, self._keep)
        self._args = (ta, tb, m, n, k, _address(self._alpha), pa, lda, pb, ldb, _address(self._beta), c, ldc)
        self._one, self._zero = _SCALAR[letter](1.0), _SCALAR[letter](0.0)
        args = list(self._args)
        args[5], args[10] = _address(self._one), _address(self._zero)
        self.product = partial(self._function, *args)

    def __call__(self, alpha=1.0, beta=0.0):
        if self._trivial:
            self.arrays[0][...] *= beta
            return
        self._alpha.value = alpha
        self._beta.value = beta
        self._function(*self._args)

    def product(self):
        """out = a @ b (alpha=1, beta=0); replaced in __init__ by a ready-made call."""
        self(1.0, 0.0)


def row_parts(out, a, b, bounds):
    """One Gemm ``out[lo:hi] = a[lo:hi] @ b`` per (lo, hi) of ``bounds``: a product split by its output
    rows, for the two streams of streams.py. Each output element is the same dot product as in the
    whole product (checked bit for bit by test_streams)."""
    return [Gemm(out[lo:hi], a[lo:hi], b) for lo, hi in bounds]


def can_set_threads():
    """Whether ``set_threads`` works: the BLAS in use is NumPy's OpenBLAS."""
    return "set_threads" in _FUNCTIONS


def set_threads(threads):
    """Set the BLAS library's threads directly (a few microseconds: for use within a step)."""
    _FUNCTIONS["set_threads"](threads)


_EXACT = {}  # (shapes, layouts, bounds, threads) -> the inner-dimension blocks that give the whole product's bits
# OpenBLAS's inner-dimension block (GEMM_Q) for float32 on the 2-core VM's kernels (SkylakeX: 448),
# and others to try on other machines.
_BLOCKS = (448, 384, 512, 256, 320, 576, 640, 768)


def inner_blocks(k, q):
    """[(start, end)] of the inner dimension k as OpenBLAS's threaded driver blocks it: q at a time,
    and a rest between q and 2q in two halves, the first rounded up."""
    blocks, start = [], 0
    while start < k:
        size = k - start
        if size >= 2 * q:
            size = q
        elif size > q:
            size = (size + 1) // 2
        blocks.append((start, start + size))
        start += size
    return blocks


def blocked_parts(out, a, b, bounds, blocks):
    """[[Gemm of each inner block] of each row part]: run a part's in order, the first with the
    product's beta, the others adding on (beta 1)."""
    return [[Gemm(out[lo:hi], a[lo:hi, start:end], b[start:end]) for start, end in blocks] for lo, hi in bounds]


def exact_blocks(out, a, b, bounds, threads):
    """The inner-dimension blocks with which ``out = a @ b``, computed as the row parts ``bounds`` one
    thread each and block after block, gives bit for bit the whole product on ``threads`` threads;
    None if no way tried does. OpenBLAS on several threads blocks the inner dimension otherwise than
    on one (a rest between 448 and 896 halved, rounded up instead of down: 801 as 401 + 400, not
    400 + 401), and may give a part another kernel than the whole (a "small matrix" kernel that adds
    beta * C in another order); which, depends on the shapes and layouts, never on the numbers: so
    each way is tried once per shape on random numbers, for each kind of alpha and beta.
    Needs ``can_set_threads()``."""
    layout = tuple((x.shape, x.strides[0] == x.itemsize and x.ndim == 2 and x.shape[0] > 1) for x in (out, a, b))
    key = (layout, tuple(bounds), threads, out.dtype.str)
    if key not in _EXACT:
        rng = np.random.default_rng(0)

        def like(x):
            fresh = rng.random(x.shape, dtype=np.float32).astype(x.dtype, copy=False)
            return np.asfortranarray(fresh) if x.strides[0] == x.itemsize and x.shape[0] > 1 else fresh

        o, a2, b2 = like(out), like(a), like(b)
        k = a.shape[1]
        ways = [[(0, k)]] + [blocks for q in _BLOCKS if k > q for blocks in [inner_blocks(k, q)]]
        _EXACT[key] = None
        for blocks in ways:
            if all(_same_bits(o, a2, b2, bounds, blocks, threads, alpha, beta)
                   for alpha, beta in ((1.0, 0.0), (-0.37, 1.0), (-0.37, 0.61))):
                _EXACT[key] = blocks
                break
    return _EXACT[key]


def _same_bits(o, a, b, bounds, blocks, threads, alpha, beta):
    whole, parts = o.copy(order="K"), o.copy(order="K")
    set_threads(threads)
    try:
        Gemm(whole, a, b)(alpha, beta)
    finally:
        set_threads(1)
    for part in blocked_parts(parts, a, b, bounds, blocks):
        for i, product in enumerate(part):
            product(alpha, beta if i == 0 else 1.0)
    return bool(np.array_equal(whole, parts))


def blas_threads():
    """The threads BLAS runs a product on now (threadpoolctl's count for the BLAS libraries loaded)."""
    from threadpoolctl import threadpool_info

    return max([info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"], default=1)


def one_thread():
    """A context running BLAS on one thread (the streams of streams.py are the parallelism then)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def gemm(out, a, b, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, in place, for a one-off product (binds and runs a Gemm)."""
    Gemm(out, a, b)(alpha, beta)
    return out


class Axpy:
    """``y += alpha * x`` in one pass (NumPy's ``y += alpha * x`` makes a temporary first), bound to
    two contiguous arrays of the same size and dtype."""

    def __init__(self, y, x):
        if y.size != x.size or y.dtype != x.dtype or y.dtype not in _LETTER:
            raise ValueError("axpy: need two arrays of one float dtype and size")
        if not (y.flags.c_contiguous and x.flags.c_contiguous):
            raise ValueError("axpy: arrays must be contiguous")
        self.arrays = (y, x)
        letter = _LETTER[y.dtype]
        self._function = _FUNCTIONS[letter + "axpy"]
        self._alpha = _SCALAR[letter](1.0)
        self._keep = [_INT(y.size), _INT(1)]
        n, one = map(_address, self._keep)
        self._args = (n, _address(self._alpha), _pointer(x), one, _pointer(y), one)

    def __call__(self, alpha):
        self._alpha.value = alpha
        self._function(*self._args)


def axpy(y, alpha, x):
    """y += alpha * x, in place, for a one-off update."""
    Axpy(y, x)(alpha)
    return y
