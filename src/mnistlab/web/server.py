"""Running the app: bind the address first (so a taken port is one clear error), then serve with uvicorn,
in this process or in several worker processes that share the port.

One process answers one request at a time: with 20 clients posting drawings at once it answered about
1,300 a second (p99 23 ms on the 2-core test machine); two workers answered about 1,900 (p99 13-14 ms),
see benchmarks/bench_draw.py.

How workers share the port. A connection stays with the worker that accepted it (the page keeps its
connection alive), so how connections fall to workers sets how evenly the load falls. With one shared
listening socket and plain accept, whichever worker woke first took most of them, and two workers were no
faster than one. With one socket per worker (SO_REUSEPORT) the kernel hashes each connection to one, so the
split is even only on average: 20 connections split 10/10, 7/13 or 5/15, and a 5/15 split cost a quarter
of the requests per second (README). So the workers share one listening socket, and each accepts a new
connection only while it holds no more open connections than the least-loaded worker plus ``SLACK``
(``FairShare``); the counts live in shared memory, each worker writing only its own. A connection no fair
worker takes within ``WAIT`` seconds (that worker busy in a long forward pass, or gone) is taken anyway.
"""

import errno
import multiprocessing
import os
import signal
import socket
import threading
import time
import webbrowser

from ..errors import InputError


def _socket(host):
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on accepted sockets whose protocol
    # says TCP. Without it every response waited ~44 ms for the client's delayed ACK (measured).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def _cannot(host, port, error):
    reason = getattr(error, "strerror", None) or error
    return InputError(f"--host {host} --port {port}: cannot listen there ({reason})")


def bind(host, port):
    """A listening socket on (host, port); InputError when it cannot be had. Port 0 picks a free one."""
    sock = _socket(host)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as e:  # in use, not an address of this machine, port out of range
        sock.close()
        raise _cannot(host, port, e) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def bind_workers(host, port, workers):
    """The listening socket for ``workers`` worker processes, once per worker: [sock] * workers. They share
    it (``serve`` gives each a ``FairShare`` view of it); InputError as ``bind`` when the port is taken."""
    return [bind(host, port)] * workers


SLACK = 1  # a worker accepts while it holds at most the fewest open connections + SLACK
# seconds a new connection waits for a fairer worker before any worker takes it (the environment's value
# lets a test on a loaded machine rule out that fallback)
WAIT = float(os.environ.get("MNISTLAB_DRAW_FAIR_WAIT", "0.005"))
EPISODE = 0.002  # refusals further apart than this wait for a new connection, not the same one


class FairShare(socket.socket):
    """Worker ``index``'s view of the shared listening socket ``listening``: ``accept`` refuses (as a
    non-blocking socket with nothing to accept does: BlockingIOError, which asyncio's server takes as "no
    more for now") while this worker holds more than the fewest open connections + SLACK, for at most
    WAIT seconds a connection. ``counts`` is shared memory, one int per worker. The connections it returns
    are ``Counted``: closing one gives its place back."""

    def __init__(self, listening, counts, index):
        super().__init__(listening.family, listening.type, listening.proto, fileno=listening.detach())
        self.counts, self.index = counts, index
        self.refusing_since = self.last_refusal = -1.0

    def accept(self):
        counts = self.counts
        if counts[self.index] > min(counts) + SLACK:
            now = time.monotonic()
            if now - self.last_refusal > EPISODE:  # the loop spins on one waiting connection at most
                self.refusing_since = now
            self.last_refusal = now
            if now - self.refusing_since < WAIT:
                raise BlockingIOError(errno.EAGAIN, "a worker holding fewer connections should take this one")
        fd, address = self._accept()
        conn = Counted(self.family, self.type, self.proto, fileno=fd)
        conn.counts, conn.index = counts, self.index
        counts[self.index] += 1
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)  # as socket.accept leaves it; asyncio makes it non-blocking anyway
        return conn, address


class Counted(socket.socket):
    """An accepted connection that gives its worker's place back when closed (once)."""

    counts = index = None  # its worker's place in the shared counts; counts None once given back

    def close(self):
        if self.counts is not None:
            self.counts[self.index] -= 1
            self.counts = None
        super().close()


def url_of(sock):
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _run(app, sock, counts=None, index=0):
    import uvicorn
    from threadpoolctl import threadpool_limits

    # One BLAS thread: a prediction is one image, and a second thread only spun on the other core
    # against the HTTP work and the clients (the server took 1.9 cores, for 930 requests/s).
    threadpool_limits(limits=1, user_api="blas")
    if counts is not None:
        sock = FairShare(sock, counts, index)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def serve(app, socks, open_browser=False, on_ready=print):
    """Serve ``app`` on the bound socket(s) until interrupted; report the address through ``on_ready``.

    With several (``bind_workers``: the same socket once per worker), one worker process is forked for
    each, after the app and its default model are loaded, so they share those pages, and they share the
    socket fairly (``FairShare``). This process waits for them, and passes SIGTERM on; Ctrl-C reaches
    them all directly.
    """
    socks = socks if isinstance(socks, list) else [socks]
    url = url_of(socks[0])

    def announce():
        on_ready(url)
        if open_browser:
            threading.Timer(0.5, webbrowser.open, (url,)).start()

    if len(socks) == 1:
        announce()
        _run(app, socks[0])
        return
    context = multiprocessing.get_context("fork")
    counts = context.RawArray("i", len(socks))  # open connections of each worker
    workers = [context.Process(target=_run, args=(app, sock, counts, k), name=f"mnistlab-draw-{k}")
               for k, sock in enumerate(socks)]
    for worker in workers:
        worker.start()
    for sock in socks:
        sock.close()  # the workers hold them now

    def stop(signum, frame):
        for worker in workers:
            if worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    announce()
    try:
        for worker in workers:
            while worker.is_alive():
                try:
                    worker.join()
                except KeyboardInterrupt:  # the workers got it too and are shutting down
                    continue
    finally:
        signal.signal(signal.SIGTERM, previous)
