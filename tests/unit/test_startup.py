"""main.py's import phase: the garbage collector paused, then what was imported frozen."""

from __future__ import annotations

import gc

import pytest

from modelserve.startup import collector_paused


@pytest.fixture(autouse=True)
def _thaw() -> None:
    """Give this test process its collector back as it was (unfrozen, enabled)."""
    yield
    gc.unfreeze()
    gc.enable()


def test_collection_is_off_inside_and_on_after_with_the_imports_frozen() -> None:
    assert gc.isenabled()
    gc.unfreeze()
    with collector_paused():
        assert not gc.isenabled()
        survivors = [{"imported": index} for index in range(100)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(survivors)


def test_a_failed_import_leaves_collection_on() -> None:
    with pytest.raises(ModuleNotFoundError), collector_paused():
        import modelserve.no_such_module  # noqa: F401
    assert gc.isenabled()
