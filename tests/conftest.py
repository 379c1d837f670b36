"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import fcntl
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
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
def colour_model_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The tests' own colour classifier (tests/colour_classifier.py), built once per run.

    Its model root (`<bucket>/image`, LATEST and one version) is shared: treat it as read-only
    and copy it (tests.helpers.copy_model) to change anything. Under pytest-xdist the first
    worker that needs it builds it in the run's shared temporary folder; the others wait and
    reuse it (each build imports TensorFlow: seconds per worker).
    """
    # find_spec, not importorskip: only the worker that builds the model imports TensorFlow.
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("the colour classifier is built with TensorFlow (pyproject.toml dev group)")
    from tests.colour_classifier import export_bucket

    if worker_id == "master":  # no xdist: this process is the run
        return export_bucket(tmp_path_factory.mktemp("colour-model"))
    shared = tmp_path_factory.getbasetemp().parent / "colour-model"
    done = shared / "built"
    with _exclusive(shared.with_name("colour-model.lock")):
        if not done.is_file():
            done.write_text(str(export_bucket(shared)))
    return Path(done.read_text())


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (other xdist workers wait on it)."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Rough run times of the longest files on a busy 2-core machine (make test, four workers), so
# that pytest-xdist starts them first: the run lasts at least as long as its longest file, and
# one started late sets the end. The Makefile passes --no-loadscope-reorder, without which
# xdist would hand files out by their count of tests instead. Measured 2026-12-02 (AMD EPYC).
LONGEST_FILES_S = {
    "integration/test_finetune_digits.py": 150,
    "integration/test_soak.py": 130,
    "integration/test_train_image.py": 95,
    "integration/test_fuzz_openapi.py": 90,
    "integration/test_finetune_options.py": 55,
    "integration/test_bench_smoke.py": 50,
    "integration/test_train_tabular.py": 40,
    "integration/test_train_mpg.py": 25,
    "unit/test_checkov.py": 15,
}
_TESTS = Path(__file__).parent
_missing = [name for name in LONGEST_FILES_S if not (_TESTS / name).is_file()]
assert not _missing, f"LONGEST_FILES_S names files that are gone: {_missing}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the other files that hold slow tests, so that
    pytest-xdist starts the longest work at once instead of leaving it for the end of the run.
    Each file's tests stay together and in order (a module fixture is built once)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def order(item: pytest.Item) -> tuple[float, bool]:
        name = item.path.relative_to(_TESTS).as_posix() if item.path.is_relative_to(_TESTS) else ""
        return -LONGEST_FILES_S.get(name, 0), item.path not in slow_files

    items.sort(key=order)
