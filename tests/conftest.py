"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

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
