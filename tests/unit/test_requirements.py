"""functions/requirements.txt (what Cloud Functions installs) equals pyproject's runtime list."""

from __future__ import annotations

import tomllib

from tests.helpers import REPO_ROOT


def _requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_runtime_requirements_match_pyproject() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    deployed = _requirement_lines((REPO_ROOT / "functions" / "requirements.txt").read_text())
    assert deployed == project["dependencies"]


def test_runtime_has_no_tensorflow() -> None:
    deployed = (REPO_ROOT / "functions" / "requirements.txt").read_text().lower()
    assert "tensorflow" not in deployed and "keras" not in deployed
