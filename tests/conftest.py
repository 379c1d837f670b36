"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelserve.config import FUNCTION_TARGET, all_variables

# Variables read by the functions or by the clients they use; tests set them explicitly.
_ISOLATED = [variable.name for variable in all_variables()] + [
    "STORAGE_EMULATOR_HOST", "THREADS", FUNCTION_TARGET]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees configuration left in the developer's shell."""
    for name in _ISOLATED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def colour_model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' own colour classifier (tests/colour_classifier.py), built once per run.

    Its model root (`<bucket>/image`, LATEST and one version) is shared: treat it as read-only
    and copy it (tests.helpers.copy_model) to change anything.
    """
    pytest.importorskip("tensorflow", reason="the colour classifier is built with TensorFlow "
                        "(pyproject.toml dev group)")
    from tests.colour_classifier import export_bucket

    return export_bucket(tmp_path_factory.mktemp("colour-model"))
