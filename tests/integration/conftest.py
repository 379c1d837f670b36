"""Integration fixtures: temporary model buckets and real function processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import COMMITTED_BUCKET, FunctionServer, copy_model


@pytest.fixture
def mpg_bucket(tmp_path: Path) -> Path:
    """A private bucket folder holding a copy of the committed MPG model version."""
    bucket = tmp_path / "bucket"
    copy_model(COMMITTED_BUCKET / "mpg", bucket, "mpg")
    return bucket


@pytest.fixture(scope="module")
def mpg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    """One predict_mpg process on the committed model, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("mpg-server")
    env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"),
           "MODEL_CACHE_DIR": str(folder / "cache"), "MAX_BATCH_SIZE": "8"}
    with FunctionServer("predict_mpg", env, folder / "server.log") as server:
        yield server
