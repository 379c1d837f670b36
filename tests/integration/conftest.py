"""Integration fixtures: temporary model buckets and real function processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import COMMITTED_BUCKET, FunctionServer, copy_model
from tests.integration.fixtures_image import start_image_server


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


@pytest.fixture(scope="module")
def colour_image_server(tmp_path_factory: pytest.TempPathFactory,
                        colour_model_root: Path) -> Iterator[FunctionServer]:
    """One classify_image process on the tests' colour classifier, shared by a module's tests."""
    with start_image_server(tmp_path_factory.mktemp("colour-server"),
                            colour_model_root) as server:
        yield server


@pytest.fixture(scope="module")
def unloaded_image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    """classify_image with no model in its bucket: POSTs answer 503, pages and GETs still work."""
    folder = tmp_path_factory.mktemp("image-no-model")
    env = {"IMAGE_MODEL_URI": str(folder / "bucket" / "image"),
           "MODEL_CACHE_DIR": str(folder / "cache")}
    with FunctionServer("classify_image", env, folder / "server.log") as server:
        yield server
