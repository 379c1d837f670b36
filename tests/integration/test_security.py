"""Security properties of the running functions: CORS, request ids in logs, the file system,
and what error messages echo back."""

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

from tests.helpers import LESSON_REQUEST, REPO_ROOT, FunctionServer
from tests.integration.fixtures_image import (
    image_server_env,
    requires_imagenet,
    shared_photo,
)

TIMEOUT = 10
ALLOWED_ORIGIN = "https://ok.example"
SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
MAX_MESSAGE_CHARS = 200
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers", "Access-Control-Max-Age")
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

@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    folder = tmp_path_factory.mktemp("cors")
    env = {"MPG_MODEL_URI": str(REPO_ROOT / "model_bucket" / "mpg"),
           "MODEL_CACHE_DIR": str(folder / "cache"), "CORS_ORIGINS": ALLOWED_ORIGIN}
    with FunctionServer("predict_mpg", env, folder / "server.log") as server:
        yield server


@pytest.mark.parametrize(("method", "body", "status"), [
    ("POST", LESSON_REQUEST, 200),
    ("POST", {**LESSON_REQUEST, "weight": 50000}, 400),  # a browser must be able to read errors
    ("GET", None, 200),
])
def test_allowed_origin_gets_cors_headers(cors_server: FunctionServer, method: str,
                                          body: dict | None, status: int) -> None:
    response = requests.request(method, cors_server.url, json=body, timeout=TIMEOUT,
                                headers={"Origin": ALLOWED_ORIGIN, "Accept": "application/json"})
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", [
    "https://evil.example",
    "https://ok.example.evil.example",
    "http://ok.example",  # another scheme is another origin
    "https://ok.example:8443",
    "null",  # sandboxed iframes, file:// pages
    "https://ok.example, https://evil.example",
])
def test_other_origins_get_no_cors_headers(cors_server: FunctionServer, origin: str) -> None:
    response = requests.post(cors_server.url, json=LESSON_REQUEST, timeout=TIMEOUT,
                             headers={"Origin": origin})
    assert response.status_code == 200  # answered (no browser involved), but not shared
    preflight = requests.options(cors_server.url, timeout=TIMEOUT, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    for answer in (response, preflight):
        assert not [h for h in CORS_HEADERS if h in answer.headers]


def test_preflight_from_allowed_origin_lists_methods_and_headers(
        cors_server: FunctionServer) -> None:
    response = requests.options(cors_server.url, timeout=TIMEOUT, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-request-id"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST"} <= methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"]
               .split(",")}
    assert {"content-type", "x-request-id"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_default_configuration_shares_with_no_origin(mpg_server: FunctionServer) -> None:
    for response in (
        requests.post(mpg_server.url, json=LESSON_REQUEST, timeout=TIMEOUT,
                      headers={"Origin": ALLOWED_ORIGIN}),
        requests.options(mpg_server.url, timeout=TIMEOUT, headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"}),
    ):
        assert response.status_code == 200
        assert not [h for h in CORS_HEADERS if h in response.headers]


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


@requires_imagenet
def test_no_upload_name_or_body_reaches_the_file_system(tmp_path: Path) -> None:
    """Hostile file names, large multipart bodies and a forged Content-Disposition write
    nothing: not under the name, not in the cache, not even an anonymous temporary file."""
    folder = tmp_path / "server"
    tmp_dir, gone = tmp_path / "tmpdir", tmp_path / "tmpdir-gone"
    tmp_dir.mkdir(parents=True)
    env = image_server_env(folder, TMPDIR=str(tmp_dir))
    cache = Path(env["MODEL_CACHE_DIR"])
    passwd = Path("/etc/passwd").stat()
    big = shared_photo("grace_hopper.bmp")  # 900 kB: above werkzeug's 500 kB in-memory limit
    with FunctionServer("classify_image", env, folder / "server.log") as server:
        assert requests.post(server.url, files={"image": ("a.jpg", shared_photo("cat.bmp"))},
                             timeout=TIMEOUT).status_code == 200  # model loaded and cached
        cache_before = snapshot(cache)
        # The server's temporary directory disappears: any temporary file it tried to make
        # from now on (even an unnamed one, as werkzeug spools large forms) would fail: a 500.
        tmp_dir.rename(gone)
        for filename in HOSTILE_FILENAMES:
            for data in (shared_photo("cat.bmp"), big, b"not an image"):
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

LONG = "x" * 10_000


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


LESSON_JSON = _json(LESSON_REQUEST)
ECHO_CASES: dict[str, tuple[bytes, dict[str, str], str, int]] = {
    "ten_kilobyte_field_name": (_json({**LESSON_REQUEST, LONG: 1}), {}, "", 400),
    "field_name_with_newlines_and_quotes": (
        _json({**LESSON_REQUEST, 'a\nb"c\u2028d\re': 1}), {}, "", 400),
    "ten_kilobyte_string_value": (_json({**LESSON_REQUEST, "weight": "9" * 10_000}), {}, "",
                                  400),
    "five_thousand_digit_number": (
        LESSON_JSON[:-1] + b', "extra": ' + b"9" * 5000 + b"}", {}, "", 400),
    "ten_kilobyte_batch_key": (_json({"instances": [LESSON_REQUEST], LONG: 1}), {}, "", 400),
    "newline_in_batch_key": (_json({"instances": [LESSON_REQUEST], "a\nb\u2028c": 1}), {}, "",
                             400),
    "ten_kilobyte_field_in_batch_item": (
        _json({"instances": [{**LESSON_REQUEST, LONG: 1}]}), {}, "", 200),
    "long_content_type": (LESSON_JSON, {"Content-Type": "text/" + "y" * 4000}, "", 415),
    "content_type_with_escaped_newline": (
        LESSON_JSON, {"Content-Type": "text/a\\nb" + "y" * 100}, "", 415),
    "ten_kilobyte_path": (LESSON_JSON, {}, "/" + LONG, 404),
}


@pytest.mark.parametrize("case", sorted(ECHO_CASES))
def test_errors_echo_only_a_bounded_escaped_slice(mpg_server: FunctionServer,
                                                  case: str) -> None:
    data, headers, path, status = ECHO_CASES[case]
    response = requests.post(mpg_server.url + path, data=data, timeout=TIMEOUT,
                             headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text
    answer = response.json()
    problems = answer.get("errors") or [p for item in answer.get("predictions", [])
                                        for p in item.get("errors", [])]
    assert problems
    for problem in problems:
        assert_bounded_message(problem["message"])
        assert problem["field"] is None or len(problem["field"]) < MAX_MESSAGE_CHARS
    assert len(response.content) < 2048
    assert LONG[:100] not in response.text


def test_error_answers_are_bounded_in_size(mpg_server: FunctionServer) -> None:
    many = json.dumps({f"{i:x}": 1 for i in range(4000)}).encode()  # within MAX_JSON_BYTES
    refused = requests.post(mpg_server.url, data=many, timeout=TIMEOUT,
                            headers={"Content-Type": "application/json"})
    assert refused.status_code == 400
    assert len(refused.content) < 4096  # 7 missing + 10 unexpected fields + a summary
