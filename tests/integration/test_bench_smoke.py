"""The benchmark runner in its quick mode, so it cannot rot: every row written, every number > 0.

Timing thresholds are never asserted here: a shared CI machine decides nothing about speed.
The quick mode leaves the peers (BentoML, LitServe) out: their environments take minutes to
install; `python -m benchmarks.run --quick --peers` runs them too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

QUICK_TIMEOUT_S = 420  # ~40 s on a quiet 2-core machine; Keras servers start slowly
SERVERS = ("loadgen_ceiling", "floor", "predict_mpg", "minimal_mpg", "floor_default_threads",
           "predict_mpg_default_threads", "lesson_mpg", "classify_image", "lesson_image")
MEASURED = tuple(key for key in SERVERS if key != "loadgen_ceiling")
CONNECTIONS = ("1", "8")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("IMAGENET_TFLITE") and os.environ.get("SHARED_IMAGES")),
        reason="IMAGENET_TFLITE and SHARED_IMAGES name the shared model and photos "
               "(.ci/run sets them)",
    ),
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `python -m benchmarks.run --quick` into a temporary folder; its output folder."""
    base = tmp_path_factory.mktemp("bench")
    out = base / "out"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out),
         "--work", str(base / "work")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=QUICK_TIMEOUT_S, check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return out


def test_every_server_has_positive_figures(quick_run: Path) -> None:
    data = json.loads((quick_run / "results.json").read_text())
    assert set(data["servers"]) == set(SERVERS)
    for key in SERVERS:
        server = data["servers"][key]
        for connections in CONNECTIONS:
            point = server["points"][connections]
            assert point["ok"] > 0, (key, connections)
            assert point["rps"] > 0 and point["p50_ms"] > 0 and point["p99_ms"] > 0, (key, point)
            assert point["errors"] == 0, (key, point)
        assert server["cold_start_median_s"] > 0, key
    for key in MEASURED:
        assert data["servers"][key]["peak_rss_mb"] > 0, key
        assert data["servers"][key]["peak_pss_mb"] > 0, key
    assert data["inprocess"]["p50_ms"] > 0 and data["inprocess"]["iterations"] > 0
    limit = data["compute_limit"]
    assert limit["processes"] == len(limit["rates"]) >= 1 and limit["rate"] > 0
    assert set(data["bucket_cold"]) == {"predict_mpg", "classify_image"}
    for cold in data["bucket_cold"].values():
        assert cold["local_s"] and cold["bucket_s"] and min(cold["local_s"] + cold["bucket_s"]) > 0
        assert all(timings["download_ms"] >= 0 for timings in cold["bucket_timings_ms"])
        assert len(cold["bucket_timings_ms"]) == len(cold["bucket_s"])


def test_every_target_is_computed(quick_run: Path) -> None:
    data = json.loads((quick_run / "results.json").read_text())
    checks = data["checks"]
    assert len(checks) >= 11  # 12 when install sizes are cached from a full run
    for check in checks:
        assert check["value"] > 0, check
        assert isinstance(check["passed"], bool)


def test_results_markdown_has_every_row(quick_run: Path) -> None:
    text = (quick_run / "RESULTS.md").read_text()
    data = json.loads((quick_run / "results.json").read_text())
    for server in data["servers"].values():
        assert text.count(f"| {server['label']} |") >= 2, server["label"]  # load rows, others
    for check in data["checks"]:
        assert f"| {check['claim']} |" in text
        assert "PASS" in text or "FAIL" in text
    for heading in ("## Targets", "## Warm throughput", "## Cold start", "## Peak resident",
                    "## Cold start from the bucket", "## Runtime dependency install size"):
        assert heading in text
    for fact in ("python -m benchmarks.run --quick", "CPUs", "Python ", "THREADS=",
                 "INTERPRETER_POOL_SIZE="):
        assert fact in text
    assert "in-process loop" in text and "compute limit" in text


def test_chart_is_a_png(quick_run: Path) -> None:
    chart = quick_run / "results.png"
    assert chart.read_bytes()[:8] == PNG_MAGIC
