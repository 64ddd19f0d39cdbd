"""The cleanroom link proxy, run as its own process in front of a small TCP sink on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
KB = 1000
MB = 1000 * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """A TCP server that counts what each connection sent and can answer with N bytes."""

    def __init__(self, reply_bytes: int = 0):
        self.reply_bytes = reply_bytes
        self.received: list[int] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with self.lock:
            index = len(self.received)
            self.received.append(0)
        with conn:
            if self.reply_bytes:
                conn.sendall(b"r" * self.reply_bytes)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.received[index] += len(data)

    def total(self) -> int:
        with self.lock:
            return sum(self.received)


class LinkProcess:
    def __init__(self, target_port: int):
        self.port = free_port()
        self.control = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.link", "--listen", f"127.0.0.1:{self.port}",
             "--target", f"127.0.0.1:{target_port}", "--control", f"127.0.0.1:{self.control}"],
            cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("link proxy did not start")

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", data=data,
                                         method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def stats(self) -> dict:
        return self._call("/stats")

    def set(self, **settings) -> dict:
        return self._call("/settings", settings)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def link(sink: Sink) -> Iterator[LinkProcess]:
    proc = LinkProcess(sink.port)
    yield proc
    proc.stop()


def send(port: int, nbytes: int, chunk: int = 64 * 1024) -> int:
    """Send nbytes (or until the connection is cut); return how many bytes the kernel accepted."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            while sent < nbytes:
                sent += sock.send(b"x" * min(chunk, nbytes - sent))
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except OSError:
            pass
    return sent


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_counts_bytes_in_each_direction():
    sink = Sink(reply_bytes=300 * KB)
    link = LinkProcess(sink.port)
    try:
        send(link.port, 5 * MB)
        assert wait_for(lambda: sink.total() == 5 * MB)
        assert wait_for(lambda: link.stats()["bytes_down"] == 300 * KB)
        stats = link.stats()
        assert stats["bytes_up"] == 5 * MB
        assert stats["connections"] == 1
    finally:
        link.stop()


def test_drop_after_cuts_the_active_connection_at_the_set_point(link: LinkProcess, sink: Sink):
    link.set(drop_every_bytes=1 * MB)
    send(link.port, 3 * MB)
    assert wait_for(lambda: link.stats()["drops"] == 1)
    assert sink.total() == 1 * MB
    assert link.stats()["bytes_up"] == 1 * MB


def test_drop_after_counts_across_connections(link: LinkProcess, sink: Sink):
    """Opening a new connection per request does not dodge the fault."""
    link.set(drop_every_bytes=1 * MB)
    send(link.port, 600 * KB)  # completes: 600 KB counted
    send(link.port, 600 * KB)  # cut after 400 KB: the 1 MB mark
    send(link.port, 300 * KB)  # counting restarts after the cut: completes
    assert wait_for(lambda: sink.total() == 1300 * KB)
    assert sorted(sink.received) == [300 * KB, 400 * KB, 600 * KB]
    assert link.stats()["drops"] == 1


def test_drop_conn_after_cuts_each_connection_on_its_own_count(link: LinkProcess, sink: Sink):
    link.set(drop_conn_after_bytes=500 * KB)
    for _ in range(3):
        send(link.port, 800 * KB)
    assert wait_for(lambda: sink.total() == 1500 * KB)
    assert sink.received == [500 * KB] * 3
    assert link.stats()["drops"] == 3


def test_rate_limit_holds_within_20_percent(link: LinkProcess, sink: Sink):
    link.set(rate_bytes_per_s=1 * MB)  # 8 Mbit/s
    started = time.monotonic()
    send(link.port, 3 * MB)
    assert wait_for(lambda: sink.total() == 3 * MB, 20)
    elapsed = time.monotonic() - started
    assert 3 * MB / elapsed == pytest.approx(1 * MB, rel=0.2)


def test_settings_changed_during_a_transfer_take_effect(link: LinkProcess, sink: Sink):
    link.set(rate_bytes_per_s=500 * KB)
    result: dict[str, float] = {}

    def transfer() -> None:
        started = time.monotonic()
        send(link.port, 3 * MB)
        result["elapsed"] = time.monotonic() - started

    worker = threading.Thread(target=transfer)
    worker.start()
    assert wait_for(lambda: sink.total() >= 500 * KB)
    # At 500 KB/s the whole transfer would take 6 s; lifting the limit finishes it at once.
    link.set(rate_bytes_per_s=None)
    worker.join(20)
    assert sink.total() == 3 * MB
    assert result["elapsed"] < 4.0

    # A drop configured mid-transfer cuts the running connection.
    link.set(rate_bytes_per_s=500 * KB)
    before = sink.total()
    worker = threading.Thread(target=send, args=(link.port, 3 * MB))
    worker.start()
    assert wait_for(lambda: sink.total() - before >= 300 * KB)
    link.set(drop_every_bytes=200 * KB)
    worker.join(20)
    assert link.stats()["drops"] == 1
    assert sink.total() - before < 3 * MB


def test_refuse_for_refuses_new_connections_then_accepts_again(link: LinkProcess, sink: Sink):
    link.set(refuse_for_s=1.0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", link.port), timeout=2)
    time.sleep(1.3)
    send(link.port, 10 * KB)
    assert wait_for(lambda: sink.total() == 10 * KB)


def test_latency_delays_each_direction():
    echo = socket.create_server(("127.0.0.1", 0))

    def serve_echo() -> None:
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=serve_echo, daemon=True).start()
    link = LinkProcess(echo.getsockname()[1])
    try:
        link.set(latency_s=0.1)
        with socket.create_connection(("127.0.0.1", link.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
            round_trip = time.monotonic() - started
        assert 0.18 <= round_trip < 0.6
    finally:
        link.stop()
        echo.close()


def test_refusing_can_be_lifted_at_once(link: LinkProcess, sink: Sink):
    link.set(refuse_for_s=60)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", link.port), timeout=2)
    link.set(refuse_for_s=0)
    assert wait_for(lambda: link.stats()["refused_until"] == 0.0)
    time.sleep(0.1)
    send(link.port, 10 * KB)
    assert wait_for(lambda: sink.total() == 10 * KB)
