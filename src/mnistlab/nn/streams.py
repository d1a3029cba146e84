"""A CNN's training step as two streams, one per core: each half of the batch on its own Python thread,
with BLAS on one thread. Layers split their work with ``streams.run(fn)`` (``fn(part)`` runs for each
part, here and on the helper thread at once; ``streams.parts(n)`` gives each part's range of n) or
``streams.stages(...)``, a sequence of such functions and of products (``StreamProduct.stage``).

Why: on two BLAS threads the products use both cores, but the NumPy work between them (im2col copies,
pooling, batch norm, activations: a quarter to a third of a one-core step) ran on one, while PyTorch
spreads everything over both. NumPy and every call into BLAS release the GIL, so two Python threads
each working on half of the images use both cores for all of it. On the quiet 2-core VM
(``benchmarks/bench_streams.py``) a step of the examples net took 0.85 of the one-stream step's
time, of the BN CNN 0.88. (Splitting only the NumPy work and keeping two BLAS threads lost on the
busy VM: OpenBLAS's idle thread spins after each product and holds the core the second stream needs.)

The results are bit for bit those of one stream on the same BLAS threads: only work that is
independent row by row is split (each image's im2col, activations, pooling, each output row of a
product); sums over the batch keep their order: a weight gradient is split by its output rows (each
still one dot product over the whole batch), batch norm's statistics stay one ``einsum`` each, and
each product is split the way that gives the bits of the whole one (``blas.exact_blocks``).
``SERIAL`` is the one-stream form (one part, run here), which MLPs always use.
"""

import threading
import weakref

from .blas import Gemm, blocked_parts, exact_blocks, set_threads


def _together(group):
    return lambda part: [stage(part) for stage in group]


class Serial:
    """One part, run on the calling thread."""

    count = 1
    threads = None

    def stages(self, *stages):
        for stage in stages:
            if stage is not BARRIER:
                stage(0)

    @staticmethod
    def parts(n):
        return [(0, n)]

    @staticmethod
    def run(fn):
        fn(0)

    def both(self, first, second):
        first()
        second()


SERIAL = Serial()


class Streams:
    """Two parts: ``run(fn)`` calls fn(0) here and fn(1) on a helper thread, and returns when both are
    done (re-raising the helper's exception). Hand-offs cost about 20 us. The helper thread ends when
    the object is collected (or on ``close()``)."""

    count = 2

    def __init__(self, threads):
        self.threads = threads  # BLAS threads outside the streams: the products' bits are theirs
        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        self._job = {"fn": None, "error": None}  # shared with the helper, which holds no reference to self
        thread = threading.Thread(target=_serve, args=(self._go, self._done, self._job),
                                  name="mnistlab-stream", daemon=True)
        thread.start()
        self.close = weakref.finalize(self, _stop, self._go, self._job)

    @staticmethod
    def parts(n):
        """[(0, n // 2), (n // 2, n)]: the halves of n rows or images."""
        return [(0, n // 2), (n // 2, n)]

    def run(self, fn):
        job = self._job
        job["fn"] = fn
        self._go.release()
        try:
            fn(0)
        finally:
            self._done.acquire()
        if job["error"] is not None:
            error, job["error"] = job["error"], None
            raise error

    def both(self, first, second):
        """first() here and second() on the helper thread, at once."""
        self.run(lambda part: second() if part else first())

    def stages(self, *stages):
        """Run fn(part) stages, each stream its part, in order; a ``Stage`` of a product that does not
        split exactly runs whole on ``threads`` BLAS threads, between the streams' work before and
        after it."""
        group = []
        for stage in stages:
            if getattr(stage, "split", True):
                group.append(stage)
                continue
            if group:
                self.run(_together(group))
                group = []
            stage.whole()
        if group:
            self.run(_together(group))


def _serve(go, done, job):
    while True:
        go.acquire()
        fn = job["fn"]
        if fn is None:
            return
        try:
            fn(1)
        except BaseException as e:  # handed to the caller of run
            job["error"] = e
        done.release()


def _stop(go, job):
    job["fn"] = None
    go.release()


class StreamProduct:
    """``out = alpha * a @ b + beta * out`` in a step run as ``streams``: split by the row ``bounds``
    (each stream's), in the blocks of the inner dimension that give the bits of the whole product
    on the streams' BLAS threads (``blas.exact_blocks``); if none does, run whole on those threads.
    ``stage(alpha, beta)`` is the product as a stage of ``Streams.stages``."""

    def __init__(self, streams, out, a, b, bounds):
        self.threads = streams.threads
        blocks = [(0, a.shape[1])] if streams.count == 1 else exact_blocks(out, a, b, bounds, streams.threads)
        self.split = blocks is not None
        if self.split:
            self.parts = blocked_parts(out, a, b, bounds, blocks)
        else:
            first, end = bounds[0][0], bounds[-1][1]
            self.product = Gemm(out[first:end], a[first:end], b)

    def run_part(self, part, alpha=1.0, beta=0.0):
        for i, product in enumerate(self.parts[part]):
            product(alpha, beta if i == 0 else 1.0)

    def whole(self, alpha=1.0, beta=0.0):
        set_threads(self.threads)
        try:
            self.product(alpha, beta)
        finally:
            set_threads(1)

    def stage(self, alpha=1.0, beta=0.0):
        return Stage(self, alpha, beta)


class Stage:
    """A StreamProduct with its alpha and beta: ``stage(part)`` runs a stream's rows, ``whole()`` all."""

    def __init__(self, product, alpha, beta):
        self.product, self.alpha, self.beta = product, alpha, beta
        self.split = product.split

    def __call__(self, part):
        self.product.run_part(part, self.alpha, self.beta)

    def whole(self):
        self.product.whole(self.alpha, self.beta)


class _Barrier:
    """A stage that only waits for both streams' work before it."""

    split = False

    @staticmethod
    def whole():
        pass


BARRIER = _Barrier()
