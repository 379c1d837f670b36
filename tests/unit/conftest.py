"""In-process fixtures for the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.inprocess import client, image_environ


@pytest.fixture(scope="module")
def colour_app(tmp_path_factory: pytest.TempPathFactory, colour_model_root: Path) -> FlaskClient:
    """classify_image on the tests' colour classifier, one app per test module."""
    folder = tmp_path_factory.mktemp("colour-app")
    return client("classify_image", image_environ(folder, colour_model_root))
