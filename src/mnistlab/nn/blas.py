"""The three matrix products of a dense layer, called straight into BLAS: this is where speed lives.

Why not ``numpy.matmul``: NumPy and SciPy each ship their own OpenBLAS, each with its own thread
pool. Using NumPy for the forward pass and SciPy's gemm for the fused update makes the two pools
spin against each other on a 2-core machine (an 800-800 epoch at batch 8 took 138 s instead of 8 s).
So every product of the training loop goes to SciPy's BLAS, writing into preallocated buffers.

BLAS is column-major: a C-contiguous (rows, cols) array is, to BLAS, its Fortran-contiguous
transpose. Each function below therefore computes the transposed product, which needs no copies.
"""

import numpy as np
from scipy.linalg import blas


def _gemm(dtype):
    return blas.sgemm if dtype == np.float32 else blas.dgemm


def _check_in_place(result, out):
    if not np.shares_memory(result, out):  # BLAS copied an unusual layout: write the result back
        out[...] = result.T


SMALL_BATCH = 32  # below this many rows a product is too small to share between cores


def affine(out, x, W, b):
    """out = x @ W + b, in place. x (batch, fan_in), W (fan_in, fan_out), out (batch, fan_out)."""
    if len(x) < SMALL_BATCH:
        # Measured on OpenBLAS 0.3.30/0.3.31 (SkylakeX kernels), one thread: NumPy's build runs this
        # few-row product in 181 us against SciPy's 282 us (800x800, batch 8). Small batches run
        # single-threaded (see train.blas_threads), so mixing the two libraries costs nothing here.
        np.matmul(x, W, out=out)
        out += b
        return out
    out[...] = b  # gemm with beta=1 then adds x @ W on top: the bias costs no extra pass
    _check_in_place(_gemm(W.dtype)(1.0, W.T, x.T, beta=1.0, c=out.T, overwrite_c=1), out)
    return out


def backprop(out, delta, W):
    """out = delta @ W.T, in place. delta (batch, fan_out), out (batch, fan_in)."""
    _check_in_place(_gemm(W.dtype)(1.0, W.T, delta.T, trans_a=1, c=out.T, overwrite_c=1), out)
    return out


def add_outer(C, alpha, inputs, delta, beta):
    """C = beta * C + alpha * inputs.T @ delta, in place; C is (fan_in, fan_out).

    One gemm reads and writes C once; ``C -= lr * (inputs.T @ delta)`` in NumPy would write a
    temporary the size of C and read it back, which for small batches is most of the step's time.
    """
    result = _gemm(C.dtype)(alpha, delta.T, inputs.T, beta=beta, c=C.T, trans_b=1, overwrite_c=1)
    if not np.shares_memory(result, C):
        C[...] = result.T


def gemm(out, a, b, beta=0.0, trans_b=False):
    """out = beta * out + a @ op(b), in place; a (m, k), b (k, n), or (n, k) with trans_b; all C-contiguous."""
    _check_in_place(_gemm(out.dtype)(1.0, b.T, a.T, trans_a=int(trans_b), beta=beta, c=out.T,
                                     overwrite_c=1), out)
    return out
