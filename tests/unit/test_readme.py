"""The README shows the two commands and documents every environment variable the code reads."""

from __future__ import annotations

from modelserve.config import all_variables, configuration_table
from tests.helpers import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    opening = README[: README.index("## ")]
    assert "make serve" in opening and "make test" in opening


def test_every_variable_is_in_the_configuration_table() -> None:
    table = README[README.index("## Configuration"):README.index("## API")]
    missing = [v.name for v in all_variables() if f"| `{v.name}` |" not in table]
    assert missing == []


def test_the_configuration_table_is_the_one_generated_from_the_declarations() -> None:
    assert configuration_table() in README, "regenerate it: python -m modelserve.config"
