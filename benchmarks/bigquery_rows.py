"""Rows per second through BigQuery's remote-function envelope, against the in-process batch.

    python -m benchmarks.bigquery_rows --rows 500 --seconds 5

Three loops on the committed MPG model, one process, no network:
- `predict_rows`: TabularTask.predict_rows on 500 records (validation and inference only),
- `own_batch`: POST / {"instances": [...]} through the Flask test client (the own API),
- `bigquery`: POST / {"calls": [[...], ...]} as BigQuery sends it, through the test client
  (body read, strict JSON parse, argument decoding, validation, inference, JSON answer).
Prints one JSON object: rows per second and milliseconds per call for each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable

from benchmarks.loadgen import percentile
from modelserve.app import build_endpoint, create_app
from modelserve.declarations import declaration
from tests.helpers import COMMITTED_BUCKET
from tests.unit.protocol_apps import bigquery_call, bigquery_request, random_cars

WARMUP_CALLS = 5


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


def run(rows: int, seconds: float) -> dict[str, object]:
    cars = random_cars(rows)
    with tempfile.TemporaryDirectory() as cache:
        env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": cache,
               "MAX_BATCH_SIZE": str(rows), "LOG_LEVEL": "WARNING"}
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

        return {
            "rows_per_call": rows,
            "envelope_bytes": len(envelope),
            "predict_rows": measure(lambda: task.predict_rows(model, cars, limits), rows,
                                    seconds),
            "own_batch": measure(post(batch), rows, seconds),
            "bigquery": measure(post(envelope), rows, seconds),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.seconds), indent=2))


if __name__ == "__main__":
    main()
