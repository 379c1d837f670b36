"""Security properties that need a real server: request ids and log lines (gunicorn refuses
some headers itself), the file system, raw request paths.

CORS and what error messages echo back: in-process, tests/unit/test_endpoint_security.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.colour_classifier import photo
from tests.helpers import LESSON_REQUEST, REPO_ROOT, FunctionServer
from tests.integration.fixtures_image import image_server_env

TIMEOUT = 10
SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_MESSAGE_CHARS = 200
# Lines in a server log that are not ours: gunicorn's start/stop lines and LiteRT's banner.
FOREIGN_LOG_LINE = re.compile(r"^(\[\d{4}-\d\d-\d\d .*\] \[\d+\] \[[A-Z]+\] |INFO: )")


def raw_request(server: FunctionServer, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (requests refuses odd headers); the status and response body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2]


def get_with_header(name: str, value: bytes, path: str = "/healthz") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
            + name.encode() + b": " + value + b"\r\n\r\n")


def app_log_lines(server: FunctionServer) -> list[dict]:
    """Every line of the server's log that is ours, parsed; fails on any that is not JSON."""
    parsed = []
    for line in server.logs().splitlines():
        if not line.strip() or FOREIGN_LOG_LINE.match(line):
            continue
        parsed.append(json.loads(line))  # a forged line would not parse
    return parsed


def assert_bounded_message(message: str) -> None:
    assert len(message) < MAX_MESSAGE_CHARS
    assert not set(message) & {"\n", "\r", "\u2028", "\u2029", "\x85"}


# --- CORS --------------------------------------------------------------------------------------

# --- Request ids and log lines -----------------------------------------------------------------

FORGED = "FORGED-" + uuid.uuid4().hex
_MARK = FORGED.encode()
# Forged ids and who stops them: 200 when our sanitiser replaces the id, or gunicorn's own
# refusal (400 for control characters, 431 above its 8190-byte header limit), in which case
# the request never reaches the function.
FORGED_IDS: dict[str, tuple[bytes, int]] = {
    "json_object": (b'{"severity":"ERROR","message":"' + _MARK + b'"}', 200),
    "json_breakout": (b'x","severity":"CRITICAL","message":"' + _MARK, 200),
    "unicode_line_separator": ("abc\u2028".encode() + _MARK, 200),
    "unicode_paragraph_separator": ("abc\u2029".encode() + _MARK, 200),
    "next_line_latin1": (b"abc\x85" + _MARK, 200),
    "escaped_newline_text": (b"abc\\n" + _MARK, 200),
    "tab": (b"abc\t" + _MARK, 200),
    "spaces": (b"a b " + _MARK, 200),
    "eight_kilobytes": (_MARK + b"A" * 8000, 200),
    "129_safe_characters": (_MARK + b"a" * (129 - len(_MARK)), 200),
    "carriage_return": (b"abc\r" + _MARK, 400),
    "nul": (b"abc\x00" + _MARK, 400),
    "vertical_tab": (b"abc\x0b" + _MARK, 400),
    "form_feed": (b"abc\x0c" + _MARK, 400),
    "ansi_escape": (b"\x1b[31m" + _MARK, 400),
    "ten_kilobytes": (_MARK + b"A" * 10_000, 431),
}


@pytest.fixture(scope="module")
def log_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    """predict_mpg whose log this module reads."""
    folder = tmp_path_factory.mktemp("logs")
    env = {"MPG_MODEL_URI": str(REPO_ROOT / "model_bucket" / "mpg"),
           "MODEL_CACHE_DIR": str(folder / "cache")}
    with FunctionServer("predict_mpg", env, folder / "server.log") as server:
        yield server


@pytest.mark.parametrize("header", ["X-Request-Id", "Function-Execution-Id"])
@pytest.mark.parametrize("case", sorted(FORGED_IDS))
def test_forged_request_id_cannot_forge_log_lines(log_server: FunctionServer, header: str,
                                                  case: str) -> None:
    value, status = FORGED_IDS[case]
    got, body = raw_request(log_server, get_with_header(header, value))
    assert got == status
    if status == 200:
        answer = json.loads(body)
        assert SAFE_ID.fullmatch(answer["id"])
        assert FORGED not in answer["id"]
        assert any(line.get("request_id") == answer["id"] for line in app_log_lines(log_server))
    app_log_lines(log_server)  # every line still parses
    assert FORGED not in log_server.logs()


@pytest.mark.parametrize("value", [
    "a", "trace-123:abc.DEF_9", "x" * 128, str(uuid.UUID(int=7)),
])
def test_safe_request_id_is_echoed_in_body_header_and_log(log_server: FunctionServer,
                                                          value: str) -> None:
    response = requests.post(log_server.url, json=LESSON_REQUEST, timeout=TIMEOUT,
                             headers={"X-Request-Id": value})
    assert response.json()["id"] == response.headers["X-Request-Id"] == value
    assert any(line.get("request_id") == value for line in app_log_lines(log_server))


@pytest.mark.parametrize("header", ["X-Cloud-Trace-Context", "traceparent"])
def test_forged_trace_headers_do_not_reach_the_log(log_server: FunctionServer,
                                                   header: str) -> None:
    value = f'{"0" * 32}/1;o=1","severity":"ERROR","x":"{FORGED}'.encode()
    status, body = raw_request(log_server, get_with_header(header, value))
    assert status == 200
    request_id = json.loads(body)["id"]
    line = next(line for line in app_log_lines(log_server)
                if line.get("request_id") == request_id)
    assert line["severity"] == "INFO"
    assert FORGED not in log_server.logs()


# --- The file system ---------------------------------------------------------------------------

HOSTILE_FILENAMES = [
    "../../etc/passwd",
    f"../../{FORGED}.jpg",
    f"/tmp/{FORGED}.jpg",
    f"..\\..\\{FORGED}.jpg",
    f"{FORGED}/../../../x.jpg",
    f"%2e%2e%2f{FORGED}.jpg",
]


GUNICORN_HEARTBEAT = "wgunicorn-"  # gunicorn's worker heartbeat file, created and unlinked


def snapshot(folder: Path) -> set[str]:
    """Every path below `folder`, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def marked_paths(*folders: Path) -> list[str]:
    """Paths named after the forged marker in the given folders (not recursive)."""
    return [str(p) for folder in folders for p in folder.iterdir() if FORGED in p.name]


def open_files(pid: int) -> list[str]:
    files = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            files.append(os.readlink(fd))
        except OSError:
            continue
    return files


def test_no_upload_name_or_body_reaches_the_file_system(tmp_path: Path,
                                                        colour_model_root: Path) -> None:
    """Hostile file names, large multipart bodies and a forged Content-Disposition write
    nothing: not under the name, not in the cache, not even an anonymous temporary file."""
    folder = tmp_path / "server"
    tmp_dir, gone = tmp_path / "tmpdir", tmp_path / "tmpdir-gone"
    tmp_dir.mkdir(parents=True)
    folder.mkdir()
    env = image_server_env(folder, colour_model_root, TMPDIR=str(tmp_dir))
    cache = Path(env["MODEL_CACHE_DIR"])
    passwd = Path("/etc/passwd").stat()
    small = photo("red", image_format="BMP")  # 230 kB
    big = photo("blue", (640, 480), "BMP")  # 921 kB: above werkzeug's 500 kB in-memory limit
    with FunctionServer("classify_image", env, folder / "server.log") as server:
        assert requests.post(server.url, files={"image": ("a.bmp", small)},
                             timeout=TIMEOUT).status_code == 200  # model loaded and cached
        cache_before = snapshot(cache)
        # The server's temporary directory disappears: any temporary file it tried to make
        # from now on (even an unnamed one, as werkzeug spools large forms) would fail: a 500.
        tmp_dir.rename(gone)
        for filename in HOSTILE_FILENAMES:
            for data in (small, big, b"not an image"):
                response = requests.post(server.url, files={"image": (filename, data)},
                                         headers={"X-Request-Id": FORGED}, timeout=TIMEOUT)
                assert response.status_code in (200, 400), response.text
                assert "root:" not in response.text
        raw = requests.post(server.url, data=big, timeout=TIMEOUT, headers={
            "Content-Type": "image/bmp", "X-Request-Id": FORGED,
            "Content-Disposition": 'attachment; filename="../../etc/passwd"'})
        assert raw.status_code == 200
        workers = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children"
                       ).read_text().split()
        for pid in (server.process.pid, *map(int, workers)):
            assert not [f for f in open_files(pid) if FORGED in f]
        assert "Traceback" not in server.logs()
    assert snapshot(cache) == cache_before
    assert not tmp_dir.exists()
    assert [name for name in snapshot(gone) if not name.startswith(GUNICORN_HEARTBEAT)] == []
    assert marked_paths(REPO_ROOT, REPO_ROOT / "functions", Path("/tmp"), tmp_path) == []
    assert Path("/etc/passwd").stat().st_mtime == passwd.st_mtime


@pytest.mark.parametrize("path", [
    b"/../../etc/passwd",
    b"/%2e%2e/%2e%2e/etc/passwd",
    b"/..%2f..%2fetc%2fpasswd",
    b"/static/../main.py",
    b"/static/demo.js",
    b"//etc/passwd",
])
def test_paths_never_reach_files(mpg_server: FunctionServer, path: bytes) -> None:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, body = raw_request(mpg_server, head)
    assert status == 404
    assert b"root:" not in body and b"import" not in body
    assert_bounded_message(json.loads(body)["errors"][0]["message"])


# --- What errors echo --------------------------------------------------------------------------

