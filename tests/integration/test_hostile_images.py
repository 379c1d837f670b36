"""A real classify_image process against the hostile corpus: its peak memory stays in budget.

The corpus is tests/hostile_cases.py, served by the tests' colour classifier; the answers and
their times are checked in-process too (tests/unit/test_hostile_images_inprocess.py). Here
the peak resident memory of the server's process tree while answering each case must stay
within the function's budget, the answer must come within ANSWER_SECONDS, and the next good
upload must still succeed. Run with -s to see the table (status, time, peak memory per case)
quoted in RELIABILITY.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.colour_classifier import photo
from tests.helpers import FunctionServer
from tests.hostile_cases import (
    ANSWER_SECONDS,
    AT_LIMIT_CASES,
    CASES,
    GOOD_COLOUR,
    RSS_BUDGET_MB,
    Case,
    check_answer,
)
from tests.integration.fixtures_image import image_server_env, start_image_server

TIMEOUT = 30
RESULTS: dict[str, tuple[int, int, float, float]] = {}  # bytes, status, seconds, peak MB


def _tree(root: int) -> list[int]:
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        stack.extend(int(child) for child in children)
    return pids


def reset_peak_rss(root: int) -> None:
    """Reset the peak resident set size (VmHWM) of every process in the tree (Linux >= 4.0)."""
    for pid in _tree(root):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(root: int) -> float:
    """The sum of the peak resident sizes (VmHWM) of a process tree since the last reset, MB."""
    total_kb = 0
    for pid in _tree(root):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The servers' caches and logs; prints the results table when the module ends."""
    yield tmp_path_factory.mktemp("hostile")
    print("\n| case | bytes | status | seconds | peak MB |\n|---|---:|---:|---:|---:|")
    for name, (size, status, seconds, peak) in sorted(RESULTS.items()):
        print(f"| {name} | {size:,} | {status} | {seconds:.2f} | {peak:.0f} |")


@pytest.fixture(scope="module")
def server(folder: Path, colour_model_root: Path) -> Iterator[FunctionServer]:
    """classify_image with the function's default limits, shared by the corpus cases."""
    with start_image_server(folder, colour_model_root) as running:
        assert good_upload(running).status_code == 200  # loads the model before any case
        yield running


@pytest.fixture
def fresh_server(folder: Path, colour_model_root: Path,
                 request: pytest.FixtureRequest) -> Iterator[FunctionServer]:
    """A new classify_image process for one case, its model loaded."""
    env = image_server_env(folder, colour_model_root)
    with FunctionServer("classify_image", env, folder / f"{request.node.name}.log") as running:
        assert good_upload(running).status_code == 200
        yield running


def good_upload(server: FunctionServer) -> requests.Response:
    return requests.post(server.url, files={"image": ("red.jpg", photo(GOOD_COLOUR))},
                         timeout=TIMEOUT)


def send(server: FunctionServer, case: Case, data: bytes) -> requests.Response:
    if case.content_type is not None:
        return requests.post(server.url, data=data, headers={"Content-Type": case.content_type},
                             timeout=TIMEOUT)
    return requests.post(server.url, files={"image": (case.filename, data)}, timeout=TIMEOUT)


def check(server: FunctionServer, name: str, case: Case) -> None:
    """Send the case; assert its answer, time and peak memory, then a good upload."""
    data = case.make()
    reset_peak_rss(server.process.pid)
    started = time.monotonic()
    response = send(server, case, data)
    seconds = time.monotonic() - started
    peak = peak_rss_mb(server.process.pid)
    RESULTS[name] = (len(data), response.status_code, seconds, peak)
    print(f"\n{name}: {len(data)} bytes -> {response.status_code} in {seconds:.2f} s, "
          f"peak {peak:.0f} MB")

    check_answer(response.status_code, response.headers["Content-Type"], response.json(), case)
    assert seconds < ANSWER_SECONDS
    assert peak < RSS_BUDGET_MB
    good = good_upload(server)
    assert good.status_code == 200, good.text
    assert good.json()["predictions"][0]["label"] == GOOD_COLOUR


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_upload_is_answered_fast_within_memory_budget(server: FunctionServer,
                                                              name: str) -> None:
    check(server, name, CASES[name])


@pytest.mark.parametrize("name", list(AT_LIMIT_CASES))
def test_image_at_the_pixel_limit_fits_the_memory_budget(fresh_server: FunctionServer,
                                                         name: str) -> None:
    check(fresh_server, name, AT_LIMIT_CASES[name])
