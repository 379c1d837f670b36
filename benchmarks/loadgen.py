"""A keep-alive HTTP/1.1 load generator: raw sockets, one selector loop per process.

A threaded `requests` client tops out below the servers it should measure; this one sends a
pre-built request on N persistent connections spread over a few processes, so it is measured
to drive far more than the fastest server here (see `benchmarks.constserver`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

RECV_BYTES = 256 * 1024
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 60.0  # for every worker process to connect
RESULT_GRACE_S = 30.0  # beyond warm-up + duration, for the workers to report
MAX_EXTENSION_S = 30.0  # longest a window waits for a slow server's first latency samples
POLL_S = 0.2
DEFAULT_PROCESSES = max(1, os.cpu_count() or 1)
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"transfer-encoding: chunked"


class LoadError(RuntimeError):
    """The load run could not start or finish (no server, a worker died)."""


@dataclass(frozen=True)
class Target:
    """Where to send load and the one complete request sent again and again."""

    host: str
    port: int
    request: bytes


@dataclass(frozen=True)
class LoadResult:
    """What one load point measured: successful answers in the window and their latencies."""

    connections: int
    processes: int
    seconds: float
    ok: int
    errors: int
    rps: float  # the workers' answers per second of their windows, summed
    completed: int  # every answer of the run, warm-up included
    latencies_ms: list[float] = field(repr=False)

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of `values` (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def http_post(path: str, body: bytes, content_type: str, host: str = "127.0.0.1") -> bytes:
    """A complete keep-alive HTTP/1.1 POST request."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: benchmarks-loadgen\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _parse_head(buffer: bytearray) -> tuple[int, int, int | None, bool] | None:
    """(status, header length, body length or None for read-to-close, close) or None if partial."""
    end = buffer.find(_HEADER_END)
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    at = head.find(_CONTENT_LENGTH)
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        length: int | None = int(head[at + len(_CONTENT_LENGTH) : stop if stop > 0 else None])
    elif _CHUNKED in head:
        raise LoadError("chunked responses are not supported by the load generator")
    else:
        length = None
    close = b"\r\nconnection: close" in head or (
        head.startswith(b"http/1.0") and b"\r\nconnection: keep-alive" not in head
    )
    return status, end + len(_HEADER_END), length, close


def request_once(target: Target, timeout_s: float) -> int:
    """Send the target's request on a new connection and return the response status."""
    with socket.create_connection((target.host, target.port), timeout=timeout_s) as sock:
        sock.sendall(target.request)
        buffer = bytearray()
        while True:
            chunk = sock.recv(RECV_BYTES)
            buffer += chunk
            parsed = _parse_head(buffer)
            if parsed is not None:
                status, head_len, length, _ = parsed
                if length is not None and len(buffer) >= head_len + length:
                    return status
            if not chunk:
                if parsed is None:
                    raise ConnectionError("connection closed before a response")
                return parsed[0]


class _Connection:
    """One persistent connection: send the request, read one response, repeat."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sock = self._connect()
        self.buffer = bytearray()
        self.sent_at = 0.0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(
            (self.target.host, self.target.port), timeout=CONNECT_TIMEOUT_S
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)  # reads happen only when the selector says data is there
        return sock

    def reconnect(self) -> None:
        self.sock.close()
        self.sock = self._connect()
        self.buffer.clear()

    def send(self) -> None:
        self.sent_at = time.perf_counter()
        self.sock.sendall(self.target.request)

    def receive(self) -> tuple[int, bool] | None:
        """Read what is there: (status, must reconnect) once a response is complete."""
        chunk = self.sock.recv(RECV_BYTES)
        self.buffer += chunk
        parsed = _parse_head(self.buffer)
        if not chunk:
            if parsed is not None and parsed[2] is None:
                return parsed[0], True  # a read-to-close body ended
            raise ConnectionError("the server closed the connection mid-response")
        if parsed is None:
            return None
        status, head_len, length, close = parsed
        if length is None or len(self.buffer) < head_len + length:
            return None
        del self.buffer[: head_len + length]
        return status, close


def _worker(
    target: Target,
    connections: int,
    warmup_s: float,
    duration_s: float,
    barrier: threading.Barrier,
    results: mp.Queue,
) -> None:
    """Process entry: drive the connections and always put one report on `results`."""
    try:
        conns = [_Connection(target) for _ in range(connections)]
    except OSError as exc:
        barrier.abort()
        results.put(("error", f"cannot connect: {exc}"))
        return
    try:
        barrier.wait()
        ok, errors, latencies, seconds, completed = _drive(conns, warmup_s, duration_s)
    except Exception as exc:  # reported to the parent, which raises LoadError
        results.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    finally:
        for conn in conns:
            conn.sock.close()
    results.put(("ok", ok, errors, latencies, seconds, completed))


@dataclass
class _Tally:
    """One worker's count: answers completed in the window, latencies of requests sent in it."""

    ok: int = 0
    errors: int = 0
    completed: int = 0  # every answer, warm-up included
    latencies: list[float] = field(default_factory=list)
    sampled: set[int] = field(default_factory=set)  # connections with a latency sample


def _drive(
    conns: list[_Connection], warmup_s: float, duration_s: float
) -> tuple[int, int, list[float], float, int]:
    """Keep one request in flight per connection: (ok, errors, latencies ms, window seconds,
    answers completed in all, warm-up included).

    Throughput counts every answer completed in the window; latencies are those of requests
    sent and answered in it. A server slower than the window gets it extended, up to
    MAX_EXTENSION_S, until every connection has one latency sample.
    """
    started = time.perf_counter()
    window_start = started + warmup_s
    window_end = window_start + duration_s
    hard_end = window_end + MAX_EXTENSION_S
    selector = selectors.DefaultSelector()
    tally = _Tally()
    for conn in conns:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
        conn.send()
    now = started
    while now < hard_end and (now < window_end or len(tally.sampled) < len(conns)):
        wait = min(POLL_S, (window_end if now < window_end else hard_end) - now)
        for key, _ in selector.select(timeout=max(0.0, wait)):
            _answer(key.data, selector, tally, window_start)
        now = time.perf_counter()
    selector.close()
    return tally.ok, tally.errors, tally.latencies, now - window_start, tally.completed


def _answer(conn: _Connection, selector: selectors.BaseSelector, tally: _Tally,
            window_start: float) -> None:
    """Read from a ready connection; on a complete answer, count it and send the next request."""
    try:
        answer = conn.receive()
    except OSError:
        answer = (0, True)
    if answer is None:
        return
    done = time.perf_counter()
    status, must_reconnect = answer
    tally.completed += 1
    if done >= window_start:
        if status == 200:
            tally.ok += 1
            if conn.sent_at >= window_start:
                tally.latencies.append((done - conn.sent_at) * 1000)
                tally.sampled.add(id(conn))
        else:
            tally.errors += 1
    if must_reconnect:
        selector.unregister(conn.sock)
        conn.reconnect()
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    conn.send()


def _collect(results: mp.Queue, workers: list, deadline: float) -> list[tuple]:
    """One report per worker; a worker that died without one becomes an error report."""
    reports: list[tuple] = []
    while len(reports) < len(workers):
        try:
            reports.append(results.get(timeout=POLL_S))
            continue
        except queue.Empty:
            pass
        dead = sum(1 for worker in workers if worker.exitcode not in (None, 0))
        if dead or time.monotonic() > deadline:
            reports.append(("error", f"{dead} load worker(s) died or timed out"))
            break
    return reports


def run_load(
    target: Target,
    connections: int,
    duration_s: float,
    warmup_s: float,
    processes: int = DEFAULT_PROCESSES,
) -> LoadResult:
    """Keep `connections` requests in flight for warm-up + duration; measure the duration."""
    processes = max(1, min(connections, processes))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    context = mp.get_context("spawn")
    barrier = context.Barrier(processes + 1, timeout=START_TIMEOUT_S)
    results: mp.Queue = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(target, share, warmup_s, duration_s, barrier, results),
            daemon=True,
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()  # broken: a worker could not connect, and its report says why
        deadline = (time.monotonic() + START_TIMEOUT_S + warmup_s + duration_s + MAX_EXTENSION_S
                    + RESULT_GRACE_S)
        reports = _collect(results, workers, deadline)
    finally:
        for worker in workers:
            worker.join(timeout=RESULT_GRACE_S)
            if worker.is_alive():
                worker.kill()
    failures = [report[1] for report in reports if report[0] == "error"]
    if failures:
        raise LoadError(f"load run against {target.host}:{target.port} failed: {failures[0]}")
    return LoadResult(
        connections=connections,
        processes=processes,
        seconds=max(report[4] for report in reports),
        ok=sum(report[1] for report in reports),
        errors=sum(report[2] for report in reports),
        rps=sum(report[1] / report[4] for report in reports),
        completed=sum(report[5] for report in reports),
        latencies_ms=[value for report in reports for value in report[3]],
    )
