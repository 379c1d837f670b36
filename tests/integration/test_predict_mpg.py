"""predict_mpg through a real functions-framework process and HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import LESSON_REQUEST, FunctionServer, latest_version

TIMEOUT = 10


def post(server: FunctionServer, body: object, **kwargs: object) -> requests.Response:
    return requests.post(server.url, json=body, timeout=TIMEOUT, **kwargs)


def assert_good_request_still_works(server: FunctionServer) -> None:
    response = post(server, LESSON_REQUEST)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["mpg"], float)


def test_lesson_request_gives_a_plausible_mpg(mpg_server: FunctionServer) -> None:
    response = post(mpg_server, LESSON_REQUEST)
    assert response.status_code == 200
    body = response.json()
    assert 15 <= body["mpg"] <= 30  # the lesson's model said 23
    assert body["model"]["name"] == "mpg"
    assert body["id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(("body", "message"), [
    ({k: v for k, v in LESSON_REQUEST.items() if k != "weight"}, "Missing value: weight."),
    ({**LESSON_REQUEST, "color": "red"}, "Unexpected field: color."),
    ({**LESSON_REQUEST, "weight": 50000},
     "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."),
])
def test_lesson_bad_requests_give_lesson_messages(mpg_server: FunctionServer, body: dict,
                                                  message: str) -> None:
    response = post(mpg_server, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert [e["message"] for e in response.json()["errors"]] == [message]
    assert_good_request_still_works(mpg_server)


def test_chunked_body_without_a_length_is_read_and_bounded(mpg_server: FunctionServer) -> None:
    # requests sends a generator as Transfer-Encoding: chunked, with no Content-Length.
    expected = post(mpg_server, LESSON_REQUEST).json()["mpg"]
    body = json.dumps(LESSON_REQUEST).encode()
    chunks = (body[i:i + 16] for i in range(0, len(body), 16))
    answer = requests.post(mpg_server.url, data=chunks, timeout=TIMEOUT,
                           headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["mpg"] == expected
    too_big = (b" " * 4096 for _ in range(20))  # 80 kB, over MAX_JSON_BYTES' 64 kB
    answer = requests.post(mpg_server.url, data=too_big, timeout=TIMEOUT,
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["code"] == "too_large"
    assert_good_request_still_works(mpg_server)


@pytest.mark.parametrize(("method", "kwargs", "status", "code"), [
    ("POST", {"data": b'{"cylinders": 8,', "headers": {"Content-Type": "application/json"}},
     400, "invalid_json"),
    ("POST", {"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}},
     400, "not_object"),
    ("POST", {"data": b'{"weight": 1, "weight": 2}',
              "headers": {"Content-Type": "application/json"}}, 400, "duplicate_field"),
    ("POST", {"data": json.dumps(LESSON_REQUEST), "headers": {"Content-Type": "text/plain"}},
     415, "unsupported_media_type"),
    ("POST", {"data": json.dumps(LESSON_REQUEST)}, 415, "unsupported_media_type"),
    ("POST", {"data": b"{" + b" " * 70000 + b"}", "headers": {"Content-Type": "application/json"}},
     413, "too_large"),
    ("PUT", {"json": LESSON_REQUEST}, 405, "method_not_allowed"),
    ("DELETE", {}, 405, "method_not_allowed"),
    ("POST", {"json": {"instances": [LESSON_REQUEST] * 9}}, 413, "too_many_instances"),
    ("POST", {"json": {"instances": []}}, 400, "wrong_type"),
    ("GET", {"url_path": "/nothing-here"}, 404, "not_found"),
    ("GET", {"url_path": "/favicon.ico"}, 404, "not_found"),
])
def test_bad_requests_get_json_errors(mpg_server: FunctionServer, method: str, kwargs: dict,
                                      status: int, code: str) -> None:
    path = kwargs.pop("url_path", "/")
    response = requests.request(method, mpg_server.url + path, timeout=TIMEOUT, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert body["id"] == response.headers["X-Request-Id"]
    assert body["errors"][0]["code"] == code
    assert "Traceback" not in response.text
    assert_good_request_still_works(mpg_server)


def test_method_not_allowed_says_what_is(mpg_server: FunctionServer) -> None:
    response = requests.put(mpg_server.url, timeout=TIMEOUT)
    assert response.headers["Allow"] == "GET, POST, OPTIONS"


def test_batch_answers_each_item(mpg_server: FunctionServer) -> None:
    single = post(mpg_server, LESSON_REQUEST).json()["mpg"]
    response = post(mpg_server, {"instances": [LESSON_REQUEST, {**LESSON_REQUEST, "origin": 7}]})
    assert response.status_code == 200
    first, second = response.json()["predictions"]
    assert first == {"mpg": single}
    assert second["errors"][0]["field"] == "origin"


def test_request_id_is_echoed_when_valid_and_replaced_when_not(mpg_server: FunctionServer) -> None:
    kept = post(mpg_server, LESSON_REQUEST, headers={"X-Request-Id": "trace-me-42"})
    assert kept.json()["id"] == kept.headers["X-Request-Id"] == "trace-me-42"
    forged = post(mpg_server, LESSON_REQUEST, headers={"X-Request-Id": "x" * 500})
    assert forged.json()["id"] != "x" * 500


def test_fifty_concurrent_requests_give_the_serial_answers(mpg_server: FunctionServer) -> None:
    records = [{**LESSON_REQUEST, "weight": 2000 + 60 * i, "horsepower": 60 + 3 * i}
               for i in range(50)]
    serial = [post(mpg_server, record).json()["mpg"] for record in records]
    assert len(set(serial)) > 40  # the answers really differ from record to record
    with ThreadPoolExecutor(max_workers=50) as pool:
        parallel = list(pool.map(lambda r: post(mpg_server, r).json()["mpg"], records))
    assert parallel == serial


def test_get_endpoints(mpg_server: FunctionServer) -> None:
    health = requests.get(mpg_server.url + "/healthz", timeout=TIMEOUT).json()
    assert health["status"] == "ok"
    meta = requests.get(mpg_server.url, timeout=TIMEOUT).json()
    assert meta["state"] == "loaded"
    assert len(meta["model"]["sha256"]) == 64
    assert [f["name"] for f in meta["input"]["features"]] == list(LESSON_REQUEST)
    answer = requests.get(mpg_server.url + "/openapi.json", timeout=TIMEOUT)
    spec = answer.json()
    assert spec["openapi"] == "3.1.0"
    assert "id" not in spec and answer.headers["X-Request-Id"]  # a valid OpenAPI root
    record = spec["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]
    weight = record["schema"]["oneOf"][0]["properties"]["weight"]
    assert (weight["minimum"], weight["maximum"]) == (1613, 5140)


def test_cold_start_is_logged_as_structured_json(mpg_server: FunctionServer) -> None:
    post(mpg_server, LESSON_REQUEST)
    lines = [json.loads(line) for line in mpg_server.logs().splitlines() if line.startswith("{")]
    cold = [line for line in lines if line["message"] == "cold start: model loaded"]
    assert len(cold) == 1
    assert {"load_ms", "first_inference_ms", "model_version"} <= cold[0].keys()
    assert any(line.get("status") == 200 and line.get("latency_ms") is not None for line in lines)


def test_trace_header_reaches_the_log(mpg_server: FunctionServer) -> None:
    trace = "105445aa7843bc8bf206b12000100000"
    post(mpg_server, LESSON_REQUEST, headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1",
                                               "X-Request-Id": "traced-1"})
    lines = [json.loads(line) for line in mpg_server.logs().splitlines() if "traced-1" in line]
    assert lines[-1]["logging.googleapis.com/trace"] == trace


def test_corrupted_model_gives_503_then_recovers_without_restart(
        mpg_bucket: Path, tmp_path: Path) -> None:
    version = latest_version(mpg_bucket / "mpg")
    model_file = version / "model.tflite"
    original = model_file.read_bytes()
    model_file.write_bytes(original[:-8] + b"corrupt!")  # same size, different sha256
    env = {"MPG_MODEL_URI": str(mpg_bucket / "mpg"), "LOAD_RETRY_MAX_SECONDS": "1",
           "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        failed = post(server, LESSON_REQUEST)
        assert failed.status_code == 503
        assert int(failed.headers["Retry-After"]) >= 1
        message = failed.json()["errors"][0]["message"]
        assert "sha256 mismatch" in message and str(mpg_bucket / "mpg") in message
        assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200

        model_file.write_bytes(original)
        started = time.monotonic()
        while time.monotonic() - started < 10:
            response = post(server, LESSON_REQUEST)
            if response.status_code == 200:
                break
            assert response.status_code == 503
            time.sleep(0.2)
        assert response.status_code == 200
        assert "model load failed" in server.logs()


def test_missing_latest_gives_503_naming_the_uri(mpg_bucket: Path, tmp_path: Path) -> None:
    (mpg_bucket / "mpg" / "LATEST").unlink()
    env = {"MPG_MODEL_URI": str(mpg_bucket / "mpg"), "MODEL_CACHE_DIR": str(tmp_path / "c")}
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        response = post(server, LESSON_REQUEST)
        assert response.status_code == 503
        assert "LATEST does not exist" in response.json()["errors"][0]["message"]
        meta = requests.get(server.url, timeout=TIMEOUT)
        assert meta.status_code == 200 and meta.json()["state"] == "failed"
