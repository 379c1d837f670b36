"""Load and soak: both functions at once, 16 keep-alive connections, valid and invalid requests.

Every answer is compared with the answer the same request got when sent alone before the
soak; there must be no 5xx, no wrong answer and no client error. After a warm-up phase the
resident memory of each server's process tree may grow by less than MAX_RSS_GROWTH and its
open file descriptors may not grow at all (both counted with no client connected).

SOAK_SECONDS (default 120) is the whole run, warm-up included; shorten it locally, e.g.
SOAK_SECONDS=20. Run with -s to see the figures quoted in RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.colour_classifier import photo
from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST, FunctionServer, process_tree_rss_mb
from tests.images_corpus import HEADERS_OF_REFUSED_FORMATS, encode, png_declaring
from tests.integration.fixtures_image import start_image_server

pytestmark = pytest.mark.slow

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
WARM_UP_SECONDS = max(5.0, SOAK_SECONDS * 0.15)
CONNECTIONS = 16  # split evenly between the two functions
MAX_RSS_GROWTH = 0.10
SETTLE_SECONDS = 2.0  # for the servers to close the connections the clients closed
TIMEOUT = 30
MAX_BATCH_SIZE = 8


@dataclass(frozen=True)
class Probe:
    """One request of the mix; `valid` ones must get exactly their serial answer."""

    name: str
    method: str
    path: str = "/"
    valid: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    def send(self, session: requests.Session, url: str) -> requests.Response:
        return session.request(self.method, url + self.path, timeout=TIMEOUT, **self.kwargs)


def answer_of(response: requests.Response) -> tuple[int, str]:
    """What must not change between the serial run and the soak: status and body without id."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, response.text
    body.pop("id", None)
    return response.status_code, json.dumps(body, sort_keys=True)


def _json(body: object) -> dict[str, Any]:
    return {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}


def mpg_probes() -> list[Probe]:
    other = {**LESSON_REQUEST, "cylinders": 4, "weight": 2200, "horsepower": 90, "origin": 3}
    light = {**LESSON_REQUEST, "cylinders": 4, "displacement": 97, "weight": 1800, "year": 81}
    return [
        Probe("lesson", "POST", valid=True, kwargs=_json(LESSON_REQUEST)),
        Probe("japanese_car", "POST", valid=True, kwargs=_json(other)),
        Probe("light_car", "POST", valid=True, kwargs=_json(light)),
        Probe("batch_with_a_bad_item", "POST", valid=True, kwargs=_json(
            {"instances": [LESSON_REQUEST, other, {**light, "weight": 1}, light]})),
        Probe("missing_weight", "POST", kwargs=_json(
            {k: v for k, v in LESSON_REQUEST.items() if k != "weight"})),
        Probe("out_of_bounds", "POST", kwargs=_json({**LESSON_REQUEST, "weight": 50000})),
        Probe("malformed_json", "POST", kwargs={
            "data": b'{"cylinders": 8,', "headers": {"Content-Type": "application/json"}}),
        Probe("text_plain", "POST", kwargs={"data": b"hi", "headers": {
            "Content-Type": "text/plain"}}),
        Probe("too_many_instances", "POST", kwargs=_json(
            {"instances": [LESSON_REQUEST] * (MAX_BATCH_SIZE + 1)})),
        Probe("no_such_path", "GET", "/nothing"),
        Probe("put", "PUT", kwargs=_json(LESSON_REQUEST)),
        Probe("healthz", "GET", "/healthz", valid=True),
    ]


def image_probes() -> list[Probe]:
    # Generated photos for the tests' colour classifier: every valid answer has a known label.
    red = Image.open(io.BytesIO(photo("red"))).convert("RGB")
    jpeg = photo("green", (640, 480))
    png = photo("blue", (300, 200), "PNG")

    def upload(data: bytes, name: str = "photo.jpg") -> dict[str, Any]:
        return {"files": {"image": (name, data)}}

    return [
        Probe("red_bmp", "POST", valid=True, kwargs=upload(photo("red", image_format="BMP"),
                                                           "red.bmp")),
        Probe("blue_raw_body", "POST", valid=True, kwargs={
            "data": photo("blue", image_format="BMP"), "headers": {"Content-Type": "image/bmp"}}),
        Probe("green_jpeg_top2", "POST", "/?top_k=2", valid=True, kwargs=upload(jpeg)),
        Probe("blue_png", "POST", valid=True, kwargs=upload(png, "blue.png")),
        Probe("red_webp", "POST", valid=True, kwargs=upload(encode(red, "WEBP"), "red.webp")),
        Probe("not_an_image", "POST", kwargs=upload(b"hello" * 100)),
        Probe("truncated_jpeg", "POST", kwargs=upload(jpeg[: len(jpeg) // 2])),
        Probe("png_bomb", "POST", kwargs=upload(png_declaring(30000, 30000), "bomb.png")),
        Probe("pdf", "POST", kwargs=upload(HEADERS_OF_REFUSED_FORMATS["pdf"], "x.pdf")),
        Probe("text_plain", "POST", kwargs={"data": b"hi", "headers": {
            "Content-Type": "text/plain"}}),
        Probe("top_k_zero", "POST", "/?top_k=0", kwargs=upload(jpeg)),
        Probe("empty_part", "POST", kwargs=upload(b"")),
    ]


@dataclass
class Target:
    """One function under load: its server, request mix and the serial answers."""

    name: str
    server: FunctionServer
    probes: list[Probe]
    expected: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass
class Tally:
    """What one phase of load did to one function (shared by its threads, under `lock`)."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int | None, wrong: str | None, error: str | None) -> None:
        with self.lock:
            self.sent += 1
            if status is not None:
                self.statuses[status] += 1
            if wrong is not None and len(self.wrong) < 20:
                self.wrong.append(wrong)
            if error is not None and len(self.client_errors) < 20:
                self.client_errors.append(error)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def server_fds(root: int) -> int:
    """Open file descriptors of a process and all its descendants (Linux /proc)."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += len(os.listdir(f"/proc/{pid}/fd"))
        stack.extend(int(c) for c in
                     Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    return total


def run_load(targets: list[Target], seconds: float) -> dict[str, Tally]:
    """CONNECTIONS threads, each with its own keep-alive session to one function, for `seconds`;
    every session is closed at the end."""
    tallies = {target.name: Tally() for target in targets}
    deadline = time.monotonic() + seconds

    def connection(index: int) -> None:
        target = targets[index % len(targets)]
        tally = tallies[target.name]
        probes = target.probes
        turn = index  # each connection starts at a different request of the mix
        with requests.Session() as session:
            while time.monotonic() < deadline:
                probe = probes[turn % len(probes)]
                turn += 1
                try:
                    response = probe.send(session, target.server.url)
                except requests.RequestException as exc:
                    tally.add(None, None, f"{probe.name}: {exc!r}")
                    continue
                got = answer_of(response)
                wrong = None
                if got != target.expected[probe.name]:
                    wrong = f"{probe.name}: {got[0]} {got[1][:200]}"
                tally.add(response.status_code, wrong, None)

    threads = [threading.Thread(target=connection, args=(i,), daemon=True)
               for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 2 * TIMEOUT)
    return tallies


@dataclass(frozen=True)
class Resources:
    rss_mb: float
    fds: int


def measure(server: FunctionServer) -> Resources:
    return Resources(process_tree_rss_mb(server.process.pid), server_fds(server.process.pid))


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory,
            colour_model_root: Path) -> Iterator[list[Target]]:
    folder = tmp_path_factory.mktemp("soak")
    mpg_env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"),
               "MODEL_CACHE_DIR": str(folder / "mpg-cache"),
               "MAX_BATCH_SIZE": str(MAX_BATCH_SIZE)}
    with ExitStack() as stack:
        mpg = stack.enter_context(FunctionServer("predict_mpg", mpg_env, folder / "mpg.log"))
        image = stack.enter_context(start_image_server(folder / "image", colour_model_root))
        yield [Target("predict_mpg", mpg, mpg_probes()),
               Target("classify_image", image, image_probes())]


def serial_answers(target: Target) -> None:
    """Each request sent alone, twice: the answers the soak must reproduce."""
    with requests.Session() as session:
        for probe in target.probes:
            first = answer_of(probe.send(session, target.server.url))
            assert first == answer_of(probe.send(session, target.server.url)), probe.name
            assert first[0] < 500, (probe.name, first)
            assert (first[0] == 200) == probe.valid, (probe.name, first)
            target.expected[probe.name] = first


def report(target: Target, tally: Tally, seconds: float,
           resources: tuple[Resources, Resources] | None = None) -> str:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
    line = (f"{target.name}: {tally.sent} requests in {seconds:.0f} s "
            f"({tally.sent / seconds:.0f}/s; {statuses}); 5xx {tally.server_errors}, "
            f"wrong {len(tally.wrong)}, client errors {len(tally.client_errors)}")
    if resources is None:
        return line
    before, after = resources
    return (f"{line}; RSS {before.rss_mb:.1f} -> {after.rss_mb:.1f} MB "
            f"({(after.rss_mb / before.rss_mb - 1) * 100:+.1f} %); "
            f"fds {before.fds} -> {after.fds}")


def test_soak_both_functions_mixed_requests(targets: list[Target]) -> None:
    for target in targets:
        serial_answers(target)
    warm_up = run_load(targets, WARM_UP_SECONDS)
    time.sleep(SETTLE_SECONDS)
    before = {t.name: measure(t.server) for t in targets}
    main_seconds = SOAK_SECONDS - WARM_UP_SECONDS
    started = time.monotonic()
    soak = run_load(targets, main_seconds)
    elapsed = time.monotonic() - started
    time.sleep(SETTLE_SECONDS)
    after = {t.name: measure(t.server) for t in targets}

    print(f"\nsoak: {SOAK_SECONDS:.0f} s ({WARM_UP_SECONDS:.0f} s warm-up, then "
          f"{main_seconds:.0f} s measured), {CONNECTIONS} connections")
    for target in targets:
        print("  warm-up " + report(target, warm_up[target.name], WARM_UP_SECONDS))
        print("  soak    " + report(target, soak[target.name], elapsed,
                                    (before[target.name], after[target.name])))
    for target in targets:
        for tally in (warm_up[target.name], soak[target.name]):
            assert tally.server_errors == 0, tally.statuses
            assert tally.wrong == [], tally.wrong
            assert tally.client_errors == [], tally.client_errors
        assert soak[target.name].sent > len(target.probes) * CONNECTIONS // len(targets)
        assert after[target.name].rss_mb < before[target.name].rss_mb * (1 + MAX_RSS_GROWTH)
        assert after[target.name].fds <= before[target.name].fds
        logs = target.server.logs()
        assert "Traceback" not in logs and "unhandled error" not in logs
        assert requests.get(target.server.url + "/healthz", timeout=TIMEOUT).status_code == 200

