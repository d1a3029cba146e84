"""Running the app: bind the address first (so a taken port is one clear error), then serve with uvicorn."""

import socket
import threading
import webbrowser

from ..errors import InputError


def bind(host, port):
    """A listening socket on (host, port); InputError when it cannot be had. Port 0 picks a free one."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on accepted sockets whose protocol
    # says TCP. Without it every response waited ~44 ms for the client's delayed ACK (measured).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as e:  # in use, not an address of this machine, port out of range
        sock.close()
        raise InputError(f"--host {host} --port {port}: cannot listen there ({getattr(e, 'strerror', None) or e})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock):
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(app, sock, open_browser=False, on_ready=print):
    """Serve ``app`` on the bound ``sock`` until interrupted; report the address through ``on_ready``."""
    import uvicorn

    url = url_of(sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    on_ready(url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    server.run(sockets=[sock])
