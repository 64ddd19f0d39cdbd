"""The cleanroom link: a user-space TCP proxy in front of prod-private.

The kernel here has no netem, so the slow, flaky, per-byte-metered link from the
cleanroom into prod is simulated by this proxy. It forwards bytes between a client
(the cleanroom) and the target (prod-private), counts them in each direction, and can
be re-configured while it runs through a small HTTP control port:

    GET  /stats      counters and current settings, as JSON
    POST /settings   JSON object with any of the settings below (null clears one)
    POST /reset      zero the counters (settings stay)

Settings:
    rate_bytes_per_s  bandwidth limit, per direction, shared by all connections
    latency_s         one-way delay added to every chunk
    drop_every_bytes  cut whatever connection carries the byte that completes each
                      N bytes of upstream traffic, counted across all connections
    drop_conn_after_bytes  cut each connection after N upstream bytes of its own
    refuse_for_s      stop listening for T seconds (new connections are refused)

"Upstream" is client -> target (what the cleanroom sends into prod): that is what
the metered link bills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from dataclasses import asdict, dataclass, field

log = logging.getLogger("airlock.sandbox.link")

SLICE = 16 * 1024  # bytes forwarded per step: the granularity of rate limits and drops
QUEUE_CHUNKS = 8  # read-ahead per direction before the reader waits for the writer


@dataclass
class LinkSettings:
    rate_bytes_per_s: float | None = None
    latency_s: float = 0.0
    drop_every_bytes: int | None = None
    drop_conn_after_bytes: int | None = None

    def update(self, changes: dict) -> None:
        for key, value in changes.items():
            if key == "refuse_for_s":
                continue
            if key not in LinkSettings.__dataclass_fields__:
                raise ValueError(f"unknown link setting {key!r}")
            if key == "latency_s":
                value = float(value or 0.0)
            elif value is not None:
                value = float(value) if key == "rate_bytes_per_s" else int(value)
                if value <= 0:
                    value = None
            setattr(self, key, value)


@dataclass
class LinkStats:
    bytes_up: int = 0
    bytes_down: int = 0
    connections: int = 0
    active: int = 0
    drops: int = 0
    refused_until: float = 0.0  # wall-clock time; 0 when accepting
    up_since_last_drop: int = 0


@dataclass
class _Pacer:
    """Paces one direction of the link at the configured rate (shared by all connections)."""

    next_free: float = 0.0

    async def wait(self, nbytes: int, rate: float | None) -> None:
        if not rate:
            self.next_free = 0.0
            return
        now = time.monotonic()
        start = max(now, self.next_free)
        self.next_free = start + nbytes / rate
        delay = self.next_free - now
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(eq=False)
class _Connection:
    number: int
    client: asyncio.StreamWriter
    target: asyncio.StreamWriter
    up_bytes: int = 0
    cut: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)

    def abort(self) -> None:
        self.cut = True
        for writer in (self.client, self.target):
            writer.transport.abort()


class Link:
    def __init__(self, listen_host: str, listen_port: int, target_host: str, target_port: int):
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.target_host = target_host
        self.target_port = target_port
        self.settings = LinkSettings()
        self.stats = LinkStats()
        self._pacers = {"up": _Pacer(), "down": _Pacer()}
        self._server: asyncio.AbstractServer | None = None
        self._reopen: asyncio.TimerHandle | None = None
        self._connections: set[_Connection] = set()

    # -- listening and refusing -------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.listen_port)
        if self.listen_port == 0:
            self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._reopen:
            self._reopen.cancel()
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        for conn in list(self._connections):
            conn.abort()

    def refuse_for(self, seconds: float) -> None:
        """Stop listening for `seconds`: new connections get 'connection refused'."""
        if self._server:
            self._server.close()
            self._server = None
        if self._reopen:
            self._reopen.cancel()
        self.stats.refused_until = time.time() + seconds
        loop = asyncio.get_running_loop()
        self._reopen = loop.call_later(seconds, lambda: asyncio.ensure_future(self._listen_again()))

    async def _listen_again(self) -> None:
        self._reopen = None
        self.stats.refused_until = 0.0
        if self._server is None:
            await self.start()

    # -- forwarding ---------------------------------------------------------------------
    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError as exc:
            log.warning("link: target %s:%s unreachable: %s", self.target_host, self.target_port, exc)
            client_writer.transport.abort()
            return
        self.stats.connections += 1
        self.stats.active += 1
        conn = _Connection(self.stats.connections, client_writer, target_writer)
        self._connections.add(conn)
        up = self._pump(conn, client_reader, target_writer, "up")
        down = self._pump(conn, target_reader, client_writer, "down")
        conn.tasks = [asyncio.ensure_future(up), asyncio.ensure_future(down)]
        try:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            self._connections.discard(conn)
            self.stats.active -= 1
            for writer in (client_writer, target_writer):
                writer.close()

    async def _pump(self, conn: _Connection, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, direction: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_CHUNKS)

        async def read_side() -> None:
            try:
                while True:
                    data = await reader.read(SLICE * 4)
                    if not data:
                        break
                    await queue.put((time.monotonic() + self.settings.latency_s, data))
            except (ConnectionError, OSError):
                pass
            finally:
                await queue.put((0.0, b""))  # end of stream, after whatever is queued

        reading = asyncio.ensure_future(read_side())
        try:
            while True:
                deliver_at, data = await queue.get()
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                delay = deliver_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                for offset in range(0, len(data), SLICE):
                    if conn.cut:
                        return
                    piece = data[offset:offset + SLICE]
                    await self._pacers[direction].wait(len(piece), self.settings.rate_bytes_per_s)
                    if direction == "up":
                        piece, cut_now = self._apply_drops(conn, piece)
                    else:
                        cut_now = False
                    if piece:
                        writer.write(piece)
                        if direction == "up":
                            self.stats.bytes_up += len(piece)
                        else:
                            self.stats.bytes_down += len(piece)
                        if cut_now:  # what crossed before the cut arrives, then the line goes dead
                            writer.transport.set_write_buffer_limits(high=0)
                        await writer.drain()
                    if cut_now:
                        self.stats.drops += 1
                        log.info("link: cut connection %d (up %d bytes)", conn.number, conn.up_bytes)
                        conn.abort()
                        return
        except (ConnectionError, OSError):
            conn.abort()
        finally:
            reading.cancel()

    def _apply_drops(self, conn: _Connection, piece: bytes) -> tuple[bytes, bool]:
        """Trim `piece` to the next drop point; say whether the connection is cut after it."""
        allowed = len(piece)
        every = self.settings.drop_every_bytes
        if every:
            allowed = min(allowed, every - self.stats.up_since_last_drop)
        per_conn = self.settings.drop_conn_after_bytes
        if per_conn:
            allowed = min(allowed, per_conn - conn.up_bytes)
        allowed = max(allowed, 0)
        piece = piece[:allowed]
        conn.up_bytes += len(piece)
        self.stats.up_since_last_drop += len(piece)
        cut = False
        if every and self.stats.up_since_last_drop >= every:
            self.stats.up_since_last_drop = 0
            cut = True
        if per_conn and conn.up_bytes >= per_conn:
            cut = True
        return piece, cut

    # -- control ----------------------------------------------------------------------
    def snapshot(self) -> dict:
        data = asdict(self.stats)
        data["settings"] = asdict(self.settings)
        data["listen"] = f"{self.listen_host}:{self.listen_port}"
        data["target"] = f"{self.target_host}:{self.target_port}"
        return data

    def apply(self, changes: dict) -> None:
        self.settings.update(changes)
        if "refuse_for_s" in changes:
            refuse = changes["refuse_for_s"]
            if refuse:
                self.refuse_for(float(refuse))
            else:  # 0 or null: accept connections again now
                if self._reopen:
                    self._reopen.cancel()
                    self._reopen = None
                self.stats.refused_until = 0.0
                if self._server is None:
                    asyncio.ensure_future(self.start())

    def reset_stats(self) -> None:
        self.stats = LinkStats(active=self.stats.active, connections=0,
                               refused_until=self.stats.refused_until)


async def _control(link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP/1.0 endpoint: one request per connection, JSON in and out."""
    try:
        request_line = (await reader.readline()).decode("latin-1").split()
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        method, path = (request_line + ["", ""])[:2]
        status, payload = 200, None
        try:
            if method == "GET" and path == "/stats":
                payload = link.snapshot()
            elif method == "POST" and path == "/settings":
                link.apply(json.loads(body or b"{}"))
                payload = link.snapshot()
            elif method == "POST" and path == "/reset":
                link.reset_stats()
                payload = link.snapshot()
            else:
                status, payload = 404, {"error": f"no such endpoint: {method} {path}"}
        except (ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        out = json.dumps(payload).encode()
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(out)}\r\n\r\n".encode() + out)
        await writer.drain()
    finally:
        writer.close()


async def serve(listen: str, target: str, control: str) -> None:
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    chost, cport = control.rsplit(":", 1)
    link = Link(lhost, int(lport), thost, int(tport))
    await link.start()
    control_server = await asyncio.start_server(lambda r, w: _control(link, r, w), chost, int(cport))
    log.info("link: %s -> %s, control on %s", listen, target, control)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    control_server.close()
    await link.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the sandbox's cleanroom link proxy.")
    parser.add_argument("--listen", required=True, help="host:port the cleanroom connects to")
    parser.add_argument("--target", required=True, help="host:port of prod-private")
    parser.add_argument("--control", required=True, help="host:port of the HTTP control port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(serve(args.listen, args.target, args.control))


if __name__ == "__main__":
    main()
