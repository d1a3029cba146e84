"""One sweep at a time per study folder: ``with StudyLock(out_dir): ...`` or InputError naming the holder.

Two sweeps into one folder would run every run twice and trip over each other's files. The lock is an
``flock`` on ``out_dir/.sweep.lock``, which the kernel releases when its process ends however it ends
(``kill -9`` included), so a crashed sweep never leaves a stale lock; the file says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import InputError

LOCK_FILE = ".sweep.lock"


class StudyLock:
    def __init__(self, out_dir):
        self.path = Path(out_dir) / LOCK_FILE
        self.fd = None

    def __enter__(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise InputError(f"{self.path.parent}: another sweep is running into this folder ({holder}); "
                                 "wait for it to end, or give another --out") from None
            try:  # the holder before us may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)  # while still holding it: a waiting sweep then retries
        os.close(self.fd)
        self.fd = None
        return False


def _holder(fd) -> str:
    """'pid 123 on host, since ...: mnistlab sweep ...' from the lock file, or what is known."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {info['pid']} on {info['host']}, since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its process is starting"
