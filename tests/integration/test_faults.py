"""Faults that need a real server: slow clients (408 from a slow socket) and SIGTERM.

Model faults (a changed file, a broken model, recovery) are tested in-process in
tests/unit/test_endpoint_faults.py.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import LESSON_REQUEST, FunctionServer

TIMEOUT = 10


def post(server: FunctionServer) -> requests.Response:
    return requests.post(server.url, json=LESSON_REQUEST, timeout=TIMEOUT)


def wait_for_status(server: FunctionServer, status: int, seconds: float = 15) -> requests.Response:
    deadline = time.monotonic() + seconds
    while True:
        response = post(server)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def partial_request(server: FunctionServer, body: bytes, sent: int) -> socket.socket:
    """A client that sends the headers and only the first `sent` bytes of its body."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[:sent])
    return sock


def read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def server_env(bucket: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"MPG_MODEL_URI": str(bucket / "mpg"), "MODEL_CACHE_DIR": str(tmp_path / "cache"),
            "LOAD_RETRY_MAX_SECONDS": "1", **extra}


def test_slow_clients_do_not_starve_the_worker_threads(mpg_bucket: Path, tmp_path: Path) -> None:
    env = server_env(mpg_bucket, tmp_path, THREADS="2", BODY_READ_TIMEOUT_SECONDS="1")
    body = json.dumps(LESSON_REQUEST).encode()
    with FunctionServer("predict_mpg", env, tmp_path / "s.log") as server:
        slow = [partial_request(server, body, sent=10) for _ in range(4)]  # 2x the threads
        started = time.monotonic()
        good = post(server)
        assert good.status_code == 200
        assert time.monotonic() - started < 8
        assert [read_status(sock) for sock in slow] == [408] * 4
        for sock in slow:
            sock.close()
        assert post(server).status_code == 200


def test_sigterm_lets_in_flight_requests_finish(mpg_bucket: Path, tmp_path: Path) -> None:
    body = json.dumps(LESSON_REQUEST).encode()
    with FunctionServer("predict_mpg", server_env(mpg_bucket, tmp_path),
                        tmp_path / "s.log") as server:
        expected = post(server).json()["mpg"]
        in_flight = [partial_request(server, body, sent=len(body) // 2) for _ in range(3)]
        time.sleep(0.3)  # the worker has started reading them
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        for sock in in_flight:
            sock.sendall(body[len(body) // 2:])
        with ThreadPoolExecutor(max_workers=3) as pool:
            statuses = list(pool.map(read_status, in_flight))
        assert statuses == [200] * 3
        assert server.process.wait(timeout=10) == 0
        with pytest.raises(requests.ConnectionError):
            requests.post(server.url, json=LESSON_REQUEST, timeout=2)
        assert isinstance(expected, float)
