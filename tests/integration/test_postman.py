"""The Postman collection, run by Postman's own runner (newman) against both real functions.

`make test` installs newman from package.json (`npm ci`); the collection's photo is made here.
classify_image serves the colour classifier the tests build, so no ../shared is needed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import colour_classifier
from tests.helpers import COMMITTED_BUCKET, REPO_ROOT, FunctionServer

NEWMAN = REPO_ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = REPO_ROOT / "examples" / "keras-functions.postman_collection.json"
NEWMAN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("postman")
    image_root = colour_classifier.export_bucket(folder / "colours")
    mpg_env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"),
               "MODEL_CACHE_DIR": str(folder / "cache")}
    image_env = {"IMAGE_MODEL_URI": str(image_root), "MODEL_CACHE_DIR": str(folder / "cache")}
    with FunctionServer("predict_mpg", mpg_env, folder / "mpg.log") as mpg, \
            FunctionServer("classify_image", image_env, folder / "image.log") as image:
        yield mpg.url, image.url


def expected_assertions() -> int:
    """pm.test calls in the collection: each must run and pass."""
    collection = json.loads(COLLECTION.read_text())
    scripts = [line for folder in collection["item"] for item in folder["item"]
               for event in item["event"] for line in event["script"]["exec"]]
    return sum(line.count("pm.test(") for line in scripts)


@pytest.mark.skipif(not NEWMAN.exists(), reason="newman is not installed: run `npm ci` "
                    "(make test does)")
def test_every_assertion_of_the_collection_passes_in_newman(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    mpg_url, image_url = servers
    (tmp_path / "photo.jpg").write_bytes(colour_classifier.photo("green"))
    report = tmp_path / "report.json"
    result = subprocess.run(
        [str(NEWMAN), "run", str(COLLECTION), "--env-var", f"mpg_url={mpg_url}",
         "--env-var", f"image_url={image_url}", "--working-dir", str(tmp_path),
         "--reporters", "cli,json", "--reporter-json-export", str(report), "--color", "off"],
        capture_output=True, text=True, timeout=NEWMAN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"] == {"total": 14, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] == expected_assertions()
