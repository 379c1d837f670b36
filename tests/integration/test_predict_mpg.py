"""predict_mpg through a real functions-framework process: chunked bodies, threads, its log.

Everything that needs no socket (answers, errors, batches, ids, metadata, model load
failures) is tested in-process: tests/unit/test_endpoint_mpg.py, test_endpoint_faults.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.helpers import LESSON_REQUEST, FunctionServer

TIMEOUT = 10


def post(server: FunctionServer, body: object, **kwargs: object) -> requests.Response:
    return requests.post(server.url, json=body, timeout=TIMEOUT, **kwargs)


def assert_good_request_still_works(server: FunctionServer) -> None:
    response = post(server, LESSON_REQUEST)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["mpg"], float)


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


def test_fifty_concurrent_requests_give_the_serial_answers(mpg_server: FunctionServer) -> None:
    records = [{**LESSON_REQUEST, "weight": 2000 + 60 * i, "horsepower": 60 + 3 * i}
               for i in range(50)]
    serial = [post(mpg_server, record).json()["mpg"] for record in records]
    assert len(set(serial)) > 40  # the answers really differ from record to record
    with ThreadPoolExecutor(max_workers=50) as pool:
        parallel = list(pool.map(lambda r: post(mpg_server, r).json()["mpg"], records))
    assert parallel == serial


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


