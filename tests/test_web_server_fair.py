"""Workers share the drawing server's port fairly: a worker refuses a new connection while it holds more
than the fewest open connections + SLACK (for at most WAIT seconds a connection), and a closed connection
gives its place back; two real workers split 20 keep-alive connections evenly."""

import http.client
import multiprocessing
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistlab.web import server
from mnistlab.web.server import SLACK, FairShare, bind

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def listening():
    sock = bind("127.0.0.1", 0)
    sock.setblocking(False)  # as asyncio's server has it
    yield sock
    sock.close()


def views(listening, counts):
    """Two workers' FairShare views of one listening socket, in this process (each on its own fd)."""
    return [FairShare(socket.socket(fileno=listening.dup().detach()), counts, k) for k in range(len(counts))]


def test_a_worker_over_its_share_refuses_and_the_least_loaded_one_accepts(listening):
    counts = multiprocessing.RawArray("i", [SLACK + 1, 0])
    first, second = views(listening, counts)
    client = socket.create_connection(listening.getsockname()[:2])
    try:
        with pytest.raises(BlockingIOError):
            first.accept()
        conn, _ = second.accept()
        assert list(counts) == [SLACK + 1, 1]
        conn.close()
        conn.close()  # a second close gives nothing back twice
        assert list(counts) == [SLACK + 1, 0]
        with pytest.raises(BlockingIOError):  # nothing left to accept, as a plain non-blocking socket says
            second.accept()
    finally:
        client.close()
        first.close()
        second.close()


def test_within_the_slack_a_worker_accepts(listening):
    counts = multiprocessing.RawArray("i", [SLACK, 0])
    first, second = views(listening, counts)
    client = socket.create_connection(listening.getsockname()[:2])
    try:
        conn, _ = first.accept()
        assert list(counts) == [SLACK + 1, 0]
        conn.close()
    finally:
        client.close()
        first.close()
        second.close()


def test_a_connection_no_fair_worker_takes_is_taken_after_wait(listening, monkeypatch):
    monkeypatch.setattr(server, "WAIT", 0.02)
    counts = multiprocessing.RawArray("i", [SLACK + 5, 0])  # the second worker is busy and never accepts
    first, second = views(listening, counts)
    client = socket.create_connection(listening.getsockname()[:2])
    try:
        start, refusals = time.monotonic(), 0
        while True:  # asyncio's loop calls accept again and again while the connection waits
            try:
                conn, _ = first.accept()
                break
            except BlockingIOError:
                refusals += 1
        waited = time.monotonic() - start
        assert refusals > 0 and waited >= 0.02
        assert list(counts) == [SLACK + 6, 0]
        conn.close()
    finally:
        client.close()
        first.close()
        second.close()


def established_per_worker(port, workers):
    """Open TCP connections on ``port`` held by each worker process, from /proc."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        if local_port == port and state == "01":  # ESTABLISHED, the server's side
            inodes.add(inode)
    held = []
    for pid in workers:
        fds = [p.readlink().name for p in Path(f"/proc/{pid}/fd").iterdir() if p.is_symlink()]
        held.append(sum(re.fullmatch(r"socket:\[(\d+)\]", fd) is not None and
                        re.fullmatch(r"socket:\[(\d+)\]", fd).group(1) in inodes for fd in fds))
    return held


def test_two_workers_split_twenty_keep_alive_connections_evenly(trained, tmp_path):
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin", "MNISTLAB_DRAW_FAIR_WAIT": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "mnistlab.cli", "draw", "--no-browser", "--port", "0", "--workers",
                             "2", "--weights", str(trained / "model.safetensors")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    connections = []
    try:
        line = proc.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
        workers = [int(c) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                   for c in (task / "children").read_text().split()]
        assert len(workers) == 2
        for _ in range(20):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/api/model")
            assert connection.getresponse().read()  # answered, and kept alive
            connections.append(connection)
        held = established_per_worker(port, workers)
        assert sum(held) == 20 and max(held) - min(held) <= SLACK + 1, held
        for connection in connections[:10]:
            connection.close()
        connections = connections[10:]
        time.sleep(0.3)  # the workers see the closes
        held = established_per_worker(port, workers)
        assert sum(held) == 10, held
    finally:
        for connection in connections:
            connection.close()
        proc.terminate()
        assert proc.wait(timeout=20) == 0
