"""Rows per second through BigQuery's remote-function envelope, against the in-process batch.

    python -m benchmarks.bigquery_rows --rows 500 --seconds 5 [--server]

Three loops on the committed MPG model, one process, no network:
- `predict_rows`: TabularTask.predict_rows on 500 records (validation and inference only),
- `own_batch`: POST / {"instances": [...]} through the Flask test client (the own API),
- `bigquery`: POST / {"calls": [[...], ...]} as BigQuery sends it, through the test client
  (body read, strict JSON parse, argument decoding, validation, inference, JSON answer).
With --server, a fourth: the same envelopes POSTed over HTTP, one at a time, to a real
functions-framework process with THREADS=1 (as Terraform deploys predict_mpg).
Prints one JSON object: rows per second and milliseconds per call for each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from benchmarks.loadgen import percentile
from modelserve.app import build_endpoint, create_app
from modelserve.declarations import declaration
from tests.helpers import COMMITTED_BUCKET, FunctionServer
from tests.unit.protocol_apps import bigquery_call, bigquery_request, random_cars

WARMUP_CALLS = 5
MAX_BODY_BYTES = 10 * 1024 * 1024  # the own batch is compared at any size: no 413 here


def measure(call: Callable[[], object], rows: int, seconds: float) -> dict[str, float]:
    """Run `call` (which handles `rows` rows) again and again for `seconds`."""
    for _ in range(WARMUP_CALLS):
        call()
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while (started := time.perf_counter()) < end:
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    total = sum(latencies) / 1000
    return {"calls": len(latencies), "rows_per_s": round(rows * len(latencies) / total),
            "p50_ms_per_call": round(percentile(latencies, 50), 2),
            "p99_ms_per_call": round(percentile(latencies, 99), 2)}


def over_http(envelope: bytes, rows: int, seconds: float, cache: str) -> dict[str, float]:
    """The envelope through a real predict_mpg process on a loopback port."""
    with tempfile.TemporaryDirectory() as folder:
        env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": cache,
               "THREADS": "1", "LOG_LEVEL": "WARNING"}
        with FunctionServer("predict_mpg", env, Path(folder) / "server.log") as server, \
                requests.Session() as session:
            def call() -> object:
                response = session.post(server.url, data=envelope, timeout=30,
                                        headers={"Content-Type": "application/json"})
                assert response.status_code == 200, response.text[:300]
                return response
            return measure(call, rows, seconds)


def run(rows: int, seconds: float, server: bool = False) -> dict[str, object]:
    cars = random_cars(rows)
    with tempfile.TemporaryDirectory() as cache:
        env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": cache,
               "MAX_BATCH_SIZE": str(rows), "MAX_JSON_BYTES": str(MAX_BODY_BYTES),
               "LOG_LEVEL": "WARNING"}
        client = create_app("predict_mpg", env).test_client()
        endpoint = build_endpoint(declaration("predict_mpg"), env)  # the same, without HTTP
        model, limits, task = endpoint.model.get(), endpoint.settings.limits, endpoint.task
        envelope = json.dumps(bigquery_request([bigquery_call(car) for car in cars])).encode()
        batch = json.dumps({"instances": cars}).encode()
        headers = {"Content-Type": "application/json"}

        def post(body: bytes) -> Callable[[], object]:
            def call() -> object:
                response = client.post("/", data=body, headers=headers)
                assert response.status_code == 200, response.get_data(as_text=True)[:300]
                return response
            return call

        figures: dict[str, object] = {
            "rows_per_call": rows,
            "envelope_bytes": len(envelope),
            "predict_rows": measure(lambda: task.predict_rows(model, cars, limits), rows,
                                    seconds),
            "own_batch": measure(post(batch), rows, seconds),
            "bigquery": measure(post(envelope), rows, seconds),
        }
        if server:
            figures["bigquery_http"] = over_http(envelope, rows, seconds, cache)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--server", action="store_true",
                        help="also through a real functions-framework process over HTTP")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.seconds, args.server), indent=2))


if __name__ == "__main__":
    main()
