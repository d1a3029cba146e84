"""The matrix products of a dense layer, called straight into BLAS: this is where speed lives.

Why not ``numpy.matmul`` everywhere: NumPy and SciPy each ship their own OpenBLAS, each with its own
thread pool, and only SciPy's gemm takes ``beta`` (C = alpha*A@B + beta*C), which lets a weight
update be one pass over W. If both pools run several threads they spin against each other on a
2-core machine (an 800-800 epoch at batch 8 took 138 s instead of 8 s), so products go to SciPy's
BLAS, except the forward product of small batches, which run single-threaded (see ``thread_limits``).

BLAS is column-major: a C-contiguous (rows, cols) array is, to BLAS, its Fortran-contiguous
transpose, and ``gemm`` below picks whichever view and transpose flag needs no copy. Which memory
order is fastest for an output depends on the product's shape; the choices below were measured
with OpenBLAS 0.3.30/0.3.31 (SkylakeX kernels), one thread, batch 8, 800x800 (microseconds):

    forward  x @ W (C order):  NumPy 182, SciPy 283
    backward delta @ W.T:      C order 288, F order 213   -> ``backprop`` can write F order
    update   W += a.T @ d:     135 (rank 8), 797 (rank 64)
"""

import os

import numpy as np
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

SMALL_BATCH = 32  # below this many rows a product is too small to share between cores


def thread_limits(batch_size, threads=None):
    """A context setting the BLAS threads for training at ``batch_size``; wrap training loops in it.

    Products of a few rows are too small to split across cores: below SMALL_BATCH one thread is
    fastest, and needed by the NumPy forward path above. Larger batches use ``threads`` (default:
    every core).
    """
    if batch_size < SMALL_BATCH:
        threads = 1
    return threadpool_limits(limits=threads or os.cpu_count() or 1, user_api="blas")


def _operand(a):
    """(F-contiguous array, transpose flag) whose BLAS ``op`` gives back ``a``, without copying."""
    if a.flags.f_contiguous:
        return a, 0
    if a.flags.c_contiguous:
        return a.T, 1
    return np.asfortranarray(a), 0


def gemm(out, a, b, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, in place; each array C- or F-contiguous."""
    if out.flags.f_contiguous:
        c, left, right = out, a, b
    else:  # out.T is F-contiguous and out.T = b.T @ a.T
        c, left, right = out.T, b.T, a.T
    A, trans_a = _operand(left)
    B, trans_b = _operand(right)
    routine = blas.sgemm if out.dtype == np.float32 else blas.dgemm
    if not c.flags.f_contiguous:  # then BLAS would write into a copy
        raise ValueError("gemm: out must be C- or F-contiguous")
    routine(alpha, A, B, beta=beta, c=c, trans_a=trans_a, trans_b=trans_b, overwrite_c=1)
    return out


def affine(out, x, W, b):
    """out = x @ W + b, in place. x (batch, fan_in), W (fan_in, fan_out), out (batch, fan_out)."""
    if len(x) < SMALL_BATCH:
        np.matmul(x, W, out=out)
        out += b
        return out
    out[...] = b  # gemm with beta=1 then adds x @ W on top: the bias costs no extra pass
    return gemm(out, x, W, beta=1.0)


def backprop(out, delta, W, scratch=None):
    """out = delta @ W.T, in place. delta (batch, fan_out), out (batch, fan_in).

    With ``scratch``, a column-major array like ``out``, BLAS writes there (faster for wide layers,
    see above) and the result is copied into ``out``: the copy costs less than running the
    activation's backward and the bias sum on a column-major array (measured 3 us against 18 us at
    8x800).
    """
    if scratch is None:
        return gemm(out, delta, W.T)
    gemm(scratch, delta, W.T)
    out[...] = scratch
    return out


def add_outer(C, alpha, inputs, delta, beta):
    """C = beta * C + alpha * inputs.T @ delta, in place; C is (fan_in, fan_out).

    One gemm reads and writes C once; ``C -= lr * (inputs.T @ delta)`` in NumPy would write a
    temporary the size of C and read it back, which for small batches is most of the step's time.
    """
    return gemm(C, inputs.T, delta, alpha, beta)


def axpy(y, alpha, x):
    """y += alpha * x, in place, in one pass; NumPy's ``y += alpha * x`` makes a temporary first."""
    routine = blas.saxpy if y.dtype == np.float32 else blas.daxpy
    routine(x.reshape(-1), y.reshape(-1), a=alpha)  # reshape(-1) of a contiguous array is a view
    return y
