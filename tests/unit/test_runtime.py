"""The lazy loader (once-only, back-off) and the interpreter pool under concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelserve.errors import ModelError, ModelUnavailable
from modelserve.runtime import InterpreterPool, LazyModel
from tests.helpers import COMMITTED_BUCKET, latest_version


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_first_calls_share_one_load() -> None:
    calls = []

    def slow_load() -> str:
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return "model"

    lazy = LazyModel("uri", slow_load, retry_max_seconds=30)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: lazy.get(), range(20)))
    assert results == ["model"] * 20
    assert len(calls) == 1
    assert lazy.state == {"state": "loaded"}


def test_failed_load_backs_off_then_retries_and_recovers() -> None:
    clock = FakeClock()
    attempts = []
    broken = [True]

    def load() -> str:
        attempts.append(clock.now)
        if broken[0]:
            raise ModelError("model.tflite: sha256 mismatch")
        return "model"

    lazy = LazyModel("model_bucket/mpg", load, retry_max_seconds=4, clock=clock)
    with pytest.raises(ModelUnavailable) as first:
        lazy.get()
    assert first.value.retry_after == 1
    assert "model_bucket/mpg" in str(first.value) and "sha256 mismatch" in str(first.value)

    clock.now += 0.5  # inside the back-off: no new attempt, no hot loop
    with pytest.raises(ModelUnavailable):
        lazy.get()
    assert len(attempts) == 1

    clock.now += 0.6  # back-off over: tried again, fails, waits twice as long
    with pytest.raises(ModelUnavailable) as second:
        lazy.get()
    assert len(attempts) == 2 and second.value.retry_after == 2
    assert lazy.state["state"] == "failed"

    broken[0] = False
    clock.now += 2.0
    assert lazy.get() == "model"
    assert lazy.state == {"state": "loaded"}


def test_back_off_is_capped() -> None:
    clock = FakeClock()

    def load() -> str:
        raise ModelError("gone")

    lazy = LazyModel("uri", load, retry_max_seconds=3, clock=clock)
    waits = []
    for _ in range(5):
        with pytest.raises(ModelUnavailable) as error:
            lazy.get()
        waits.append(error.value.retry_after)
        clock.now += error.value.retry_after
    assert waits == [1, 2, 3, 3, 3]


def test_unexpected_exception_in_load_is_a_503_not_a_crash() -> None:
    def load() -> str:
        raise KeyError("runtime")

    with pytest.raises(ModelUnavailable, match="KeyError"):
        LazyModel("uri", load, retry_max_seconds=1).get()


@pytest.fixture(scope="module")
def mpg_model_bytes() -> bytes:
    return (latest_version(COMMITTED_BUCKET / "mpg") / "model.tflite").read_bytes()


def test_broken_model_bytes_fail_at_load() -> None:
    with pytest.raises(ModelError, match="LiteRT cannot load"):
        InterpreterPool(b"not a flatbuffer" * 10, size=2)


def test_pool_gives_serial_answers_under_concurrency(mpg_model_bytes: bytes) -> None:
    pool = InterpreterPool(mpg_model_bytes, size=3)
    rng = np.random.default_rng(0)
    inputs = [rng.uniform([3, 68, 46, 1613, 8, 70, 1], [8, 455, 230, 5140, 24.8, 82, 3])
              .astype(np.float32)[np.newaxis] for _ in range(200)]
    serial = [pool.run(x).item() for x in inputs]
    assert len(set(serial)) > 190
    with ThreadPoolExecutor(max_workers=16) as threads:
        parallel = list(threads.map(lambda x: pool.run(x).item(), inputs * 5))
    assert parallel == serial * 5


def test_pool_never_creates_more_interpreters_than_its_size(mpg_model_bytes: bytes) -> None:
    pool = InterpreterPool(mpg_model_bytes, size=2)
    x = np.zeros((1, 7), dtype=np.float32)
    with ThreadPoolExecutor(max_workers=8) as threads:
        list(threads.map(lambda _: pool.run(x), range(100)))
    assert pool.interpreters <= 2


def test_filling_the_input_in_place_answers_like_passing_an_array(mpg_model_bytes: bytes) -> None:
    pool = InterpreterPool(mpg_model_bytes, size=2)
    rng = np.random.default_rng(1)
    rows = rng.uniform([3, 68, 46, 1613, 8, 70, 1], [8, 455, 230, 5140, 24.8, 82, 3],
                       size=(50, 7)).astype(np.float32)
    passed = [pool.run(row[np.newaxis]).item() for row in rows]

    def fill_with(row: np.ndarray):
        def fill(buffer: np.ndarray) -> None:
            assert buffer.shape == (7,) and buffer.dtype == np.float32
            buffer[:] = row
        return fill

    with ThreadPoolExecutor(max_workers=4) as threads:
        filled = list(threads.map(lambda row: pool.run_filled(fill_with(row)).item(), rows))
    assert filled == passed
    assert len(set(filled)) == len(rows)
