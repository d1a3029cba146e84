"""Deferred weight updates for small batches: exact, and the big matrices are rewritten less often.

Plain SGD at batch b changes W by a rank-b matrix, ``alpha * A.T @ D``. Writing that into an 800x800
W at every step reads and writes 2.5 MB to do 8 rows' worth of arithmetic, so small-batch training
is bound by memory traffic. Instead the factors (A, D) of the last few steps are kept, and every
product that needs the current weights adds their part:

    x @ W_now      = x @ W + (x @ A.T) @ D          (forward)
    delta @ W_now.T = delta @ W.T + (delta @ D.T) @ A  (backward)

which costs O(batch x pending rows x width), small next to the main product. When the buffer is
full the pending steps are applied in one gemm of rank ``capacity``, which runs near the machine's
peak. Nothing is approximated: W + A.T @ D is the weight matrix plain SGD would hold.
"""

import numpy as np

from .blas import add_outer, gemm


class DeferredUpdates:
    """Pending updates of one (fan_in, fan_out) weight matrix, at most ``capacity`` rows of factors."""

    def __init__(self, W, capacity):
        self.A = np.empty((capacity, W.shape[0]), W.dtype)  # stacked layer inputs
        self.D = np.empty((capacity, W.shape[1]), W.dtype)  # stacked alpha * deltas
        self.rows = 0

    def add(self, W, alpha, inputs, delta):
        """Defer W += alpha * inputs.T @ delta (applying the pending ones first if full)."""
        n = len(inputs)
        if self.rows + n > len(self.A):
            self.flush(W)
        np.copyto(self.A[self.rows:self.rows + n], inputs)
        np.multiply(delta, alpha, out=self.D[self.rows:self.rows + n])
        self.rows += n

    def flush(self, W):
        if self.rows:
            add_outer(W, 1.0, self.A[:self.rows], self.D[:self.rows], 1.0)
            self.rows = 0

    def correct_forward(self, out, x):
        """out += x @ (pending update); out is x @ W + b already."""
        if self.rows:
            mix = gemm(np.empty((len(x), self.rows), x.dtype), x, self.A[:self.rows].T)
            gemm(out, mix, self.D[:self.rows], beta=1.0)

    def correct_backward(self, out, delta):
        """out += delta @ (pending update).T; out is delta @ W.T already."""
        if self.rows:
            mix = gemm(np.empty((len(delta), self.rows), delta.dtype), delta, self.D[:self.rows].T)
            gemm(out, mix, self.A[:self.rows], beta=1.0)
