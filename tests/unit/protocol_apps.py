"""In-process functions for the protocol tests: create_app(...).test_client() on the committed
MPG model (and the shared ImageNet model when IMAGENET_TFLITE is set)."""

from __future__ import annotations

import random
from pathlib import Path

from flask.testing import FlaskClient

from modelserve.app import create_app
from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST

FEATURES = tuple(LESSON_REQUEST)
LESSON_MPG = 18.676


def mpg_client(cache: Path, **environ: str) -> FlaskClient:
    """predict_mpg in-process on the committed model, with extra variables."""
    env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": str(cache),
           **environ}
    return create_app("predict_mpg", env).test_client()


def random_cars(count: int, seed: int = 0) -> list[dict[str, float | int]]:
    """Valid cars inside the training ranges, the same ones for the same seed."""
    rng = random.Random(seed)
    return [{"cylinders": rng.choice([4, 6, 8]), "displacement": round(rng.uniform(70, 450), 1),
             "horsepower": round(rng.uniform(50, 225), 1), "weight": rng.randint(1700, 5000),
             "acceleration": round(rng.uniform(8.5, 24.5), 1), "year": rng.randint(70, 82),
             "origin": rng.randint(1, 3)} for _ in range(count)]


def bigquery_call(car: dict[str, float | int]) -> list[object]:
    """A car as BigQuery sends one call's arguments: INT64 as strings, FLOAT64 as numbers."""
    return [str(car[name]) if name in ("cylinders", "year", "origin") else float(car[name])
            for name in FEATURES]


def bigquery_request(calls: list[list[object]], **context: str) -> dict[str, object]:
    """A remote-function request body as BigQuery's documentation shows it."""
    body: dict[str, object] = {
        "requestId": "124ab1c",
        "caller": "//bigquery.googleapis.com/projects/myproject/jobs/myproject:US.bquxjob_5b4c",
        "sessionUser": "test-user@test-company.com",
        "calls": calls,
    }
    if context:
        body["userDefinedContext"] = context
    return body
