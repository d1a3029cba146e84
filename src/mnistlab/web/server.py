"""Running the app: bind the address first (so a taken port is one clear error), then serve with uvicorn,
in this process or in several worker processes that share the port.

One process answers one request at a time: with 20 clients posting drawings at once it answered about
1,300 a second (p99 23 ms on the 2-core test machine); two workers answered about 1,900 (p99 13-14 ms),
see benchmarks/bench_draw.py. Each worker has its own listening socket on the same port
(SO_REUSEPORT): with one shared socket, whichever worker woke first took most of the connections, and
two workers were no faster than one. The kernel hashes each connection to one of the sockets, so the
spread is even only on average: 20 keep-alive connections split 10/10, 7/13 or 5/15 (README).
"""

import multiprocessing
import os
import signal
import socket
import threading
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
    """``workers`` listening sockets sharing (host, port) through SO_REUSEPORT, one per worker process.

    The port is first taken as ``bind`` takes it, without SO_REUSEPORT, so a port another program
    (or another ``mnistlab draw``) listens on is still an error rather than silently shared.
    """
    if workers == 1:
        return [bind(host, port)]
    probe = bind(host, port)
    port = probe.getsockname()[1]  # port 0: the free one the probe was given
    probe.close()
    socks = []
    try:
        for _ in range(workers):
            sock = _socket(host)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(128)
    except OSError as e:  # taken in the instant between the probe and these
        for sock in socks:
            sock.close()
        raise _cannot(host, port, e) from None
    return socks


def url_of(sock):
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _run(app, sock):
    import uvicorn
    from threadpoolctl import threadpool_limits

    # One BLAS thread: a prediction is one image, and a second thread only spun on the other core
    # against the HTTP work and the clients (the server took 1.9 cores, for 930 requests/s).
    threadpool_limits(limits=1, user_api="blas")
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def serve(app, socks, open_browser=False, on_ready=print):
    """Serve ``app`` on the bound socket(s) until interrupted; report the address through ``on_ready``.

    With several sockets (``bind_workers``), one worker process is forked per socket, after the app
    and its default model are loaded, so they share those pages. This process waits for them, and
    passes SIGTERM on; Ctrl-C reaches them all directly.
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
    workers = [context.Process(target=_run, args=(app, sock), name=f"mnistlab-draw-{k}")
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
