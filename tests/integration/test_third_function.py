"""A third function, declared outside the package, serving a second MPG version for real.

Adding a function is one Declaration: a main.py of its own binds `entry_point(...)` and
functions-framework serves it. The new function reads only its own model variable
(MPG_V2_MODEL_URI): predict_mpg's MPG_MODEL_URI, malformed in its environment, is never read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from modelserve.contract import MANIFEST_FILE, complete_manifest, manifest_bytes
from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST, FunctionServer, latest_version

TIMEOUT = 10
SECOND_VERSION = "20991231T235959Z"
MAIN = '''"""A third function: the MPG model's second version, under its own name."""

from modelserve.app import entry_point
from modelserve.declarations import Declaration, Threads

predict_mpg_v2 = entry_point(Declaration(
    name="predict_mpg_v2",
    task="tabular",
    model_variable="MPG_V2_MODEL_URI",
    model_folder="mpg",
    title="Auto MPG, second version",
    summary="POST a car's seven attributes -> the second MPG version's prediction.",
    threads=Threads(fixed=1),
    paths=("/api/mpg",),
))
'''


def two_version_bucket(bucket: Path) -> Path:
    """The committed MPG version under its own name and as SECOND_VERSION (LATEST names it)."""
    first = latest_version(COMMITTED_BUCKET / "mpg")
    root = bucket / "mpg"
    shutil.copytree(first, root / first.name)
    second = root / SECOND_VERSION
    shutil.copytree(first, second)
    manifest = json.loads((second / MANIFEST_FILE).read_bytes())
    manifest["version"] = SECOND_VERSION  # a version's manifest names its own folder
    (second / MANIFEST_FILE).write_bytes(manifest_bytes(complete_manifest(second, manifest)))
    (root / "LATEST").write_text(SECOND_VERSION + "\n")
    return root


@pytest.fixture(scope="module")
def third(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    folder = tmp_path_factory.mktemp("third")
    root = two_version_bucket(folder / "bucket")
    source = folder / "source" / "main.py"
    source.parent.mkdir()
    source.write_text(MAIN)
    env = {"MPG_V2_MODEL_URI": str(root / SECOND_VERSION),  # pinned to the second version
           "MPG_MODEL_URI": "ftp://not a uri",  # predict_mpg's: must not be read
           "MODEL_CACHE_DIR": str(folder / "cache")}
    with FunctionServer("predict_mpg_v2", env, folder / "server.log", source=source) as server:
        yield server


def test_third_function_answers_the_lesson_car_with_the_second_version(
        third: FunctionServer) -> None:
    for path in ("/", "/api/mpg"):
        response = requests.post(third.url + path, json=LESSON_REQUEST, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        body = response.json()
        assert 15 <= body["mpg"] <= 30
        assert body["model"] == {"name": "mpg", "version": SECOND_VERSION}


def test_third_function_describes_itself(third: FunctionServer) -> None:
    meta = requests.get(third.url, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    assert meta.status_code == 200
    body = meta.json()
    assert body["function"] == "predict_mpg_v2"
    assert body["uri"].endswith(SECOND_VERSION)
    assert body["model"]["version"] == SECOND_VERSION
    spec = requests.get(third.url + "/openapi.json", timeout=TIMEOUT).json()
    assert set(spec["paths"]) >= {"/", "/api/mpg"}
    bad = requests.post(third.url, json={**LESSON_REQUEST, "weight": 50000}, timeout=TIMEOUT)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "weight"


def test_malformed_mpg_model_uri_stops_predict_mpg_but_not_the_third(
        third: FunctionServer, tmp_path: Path) -> None:
    # The control: the same malformed value does stop predict_mpg itself at start.
    env = {"MPG_MODEL_URI": "ftp://not a uri", "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with pytest.raises(RuntimeError, match="MPG_MODEL_URI"):
        FunctionServer("predict_mpg", env, tmp_path / "server.log").stop()
    assert requests.get(third.url + "/healthz", timeout=TIMEOUT).status_code == 200
