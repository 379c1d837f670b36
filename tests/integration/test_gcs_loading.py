"""Loading models from gs:// through the real client and the Cloud Storage emulator.

Each test starts gcp-storage-emulator on a free port, publishes the committed MPG model with
train.publish, and starts predict_mpg with MPG_MODEL_URI=gs://... and STORAGE_EMULATOR_HOST.
Faults the emulator can produce (missing object or bucket, other bytes, a wrong crc32c, the
emulator stopped) are produced here; 403, transient 503s and timeouts are injected at the
client boundary in tests/unit/test_artifacts_cache.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.helpers import COMMITTED_BUCKET, LESSON_REQUEST, FunctionServer, copy_model
from tests.storage_emulator import StorageEmulator, committed_mpg_version
from train.publish import parse_args, run

BUCKET = "models"
TIMEOUT = 20
RECOVERY_TIMEOUT_S = 15.0
CONCURRENT_REQUESTS = 20
VERSION = committed_mpg_version()

pytestmark = pytest.mark.skipif(not VERSION, reason="model_bucket/mpg has no committed version")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[StorageEmulator]:
    with StorageEmulator(tmp_path / "emulator.log", bucket=BUCKET) as running:
        yield running


def publish(emulator: StorageEmulator, to: str = f"gs://{BUCKET}",
            local_bucket: Path = COMMITTED_BUCKET, models: tuple[str, ...] = ("mpg",)) -> None:
    """`python -m train.publish --to ... --set-latest`, in this process."""
    argv = ["--bucket", str(local_bucket), "--to", to, "--set-latest"]
    for model in models:
        argv += ["--model", model]
    assert run(parse_args(argv), client=emulator.client(), say=lambda _: None) == 0


def server_env(emulator: StorageEmulator, cache: Path, uri: str) -> dict[str, str]:
    return {"MPG_MODEL_URI": uri, "STORAGE_EMULATOR_HOST": emulator.host,
            "MODEL_CACHE_DIR": str(cache), "LOAD_RETRY_MAX_SECONDS": "1"}


def post(server: FunctionServer) -> requests.Response:
    return requests.post(server.url, json=LESSON_REQUEST, timeout=TIMEOUT)


def log_lines(server: FunctionServer, message: str) -> list[dict]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == message]


def assert_recovers(server: FunctionServer) -> requests.Response:
    """Poll with the good request until it succeeds (LazyModel's back-off is at most 1 s)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        response = post(server)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["mpg"], float)
    return response


def assert_unavailable(server: FunctionServer, expected_cause: str) -> str:
    """503 with Retry-After naming the cause, one log line for it, and GETs still answer."""
    response = post(server)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    message = response.json()["errors"][0]["message"]
    assert expected_cause in message
    failures = log_lines(server, "model load failed")
    assert len(failures) == 1
    assert failures[0]["uri"].startswith("gs://") and expected_cause in failures[0]["cause"]
    assert requests.get(server.url + "/healthz", timeout=TIMEOUT).status_code == 200
    meta = requests.get(server.url, timeout=TIMEOUT)
    assert meta.status_code == 200 and meta.json()["state"] == "failed"
    return message


def cached_names(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file())


def test_cold_download_then_warm_cache_serves_a_pinned_version_with_storage_down(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    publish(emulator)
    cache = tmp_path / "cache"
    env = server_env(emulator, cache, f"gs://{BUCKET}/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "cold.log") as server:
        assert post(server).status_code == 200
        [cold] = log_lines(server, "cold start: model loaded")
    assert cold["downloaded_bytes"] > 0 and cold["cache_hit"] is False
    assert cold["source"] == f"gs://{BUCKET}/mpg/{VERSION}"
    assert emulator.downloads("model.tflite") == [f"mpg/{VERSION}/model.tflite"]
    model = cache / BUCKET / "mpg" / VERSION / "model.tflite"
    assert model.read_bytes() == (COMMITTED_BUCKET / "mpg" / VERSION / "model.tflite").read_bytes()

    emulator.stop()  # a restarted instance, the bucket unreachable
    env = server_env(emulator, cache, f"gs://{BUCKET}/mpg/{VERSION}")
    with FunctionServer("predict_mpg", env, tmp_path / "warm.log") as server:
        response = post(server)
        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == VERSION
        [warm] = log_lines(server, "cold start: model loaded")
    assert warm["downloaded_bytes"] == 0 and warm["cache_hit"] is True


def test_corrupted_object_gives_503_is_never_loaded_or_cached_then_recovers(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    publish(emulator)
    blob = emulator.client().bucket(BUCKET).blob(f"mpg/{VERSION}/model.tflite")
    original = blob.download_as_bytes()
    blob.upload_from_string(original[:-8] + b"corrupt!")  # same size, same manifest
    cache = tmp_path / "cache"
    env = server_env(emulator, cache, f"gs://{BUCKET}/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        message = assert_unavailable(server, f"gs://{BUCKET}/mpg/{VERSION}/model.tflite: "
                                             "sha256 mismatch")
        assert "discarded" in message
        assert cached_names(cache) == []  # no model, no temporary file, no manifest
        assert log_lines(server, "cold start: model loaded") == []

        blob.upload_from_string(original)
        assert_recovers(server)
    assert cached_names(cache) == ["manifest.json", "model.tflite"]


def test_crc32c_mismatch_reported_by_storage_gives_503_then_recovers(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    publish(emulator)
    blob = emulator.client().bucket(BUCKET).get_blob(f"mpg/{VERSION}/model.tflite")
    good_crc32c = blob.crc32c
    blob.crc32c = "AAAAAA=="  # the emulator now sends a hash the bytes do not have
    blob.patch()
    cache = tmp_path / "cache"
    env = server_env(emulator, cache, f"gs://{BUCKET}/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        assert_unavailable(server, "model.tflite: crc32c mismatch")
        assert cached_names(cache) == []

        blob.crc32c = good_crc32c
        blob.patch()
        assert_recovers(server)


def test_missing_object_gives_503_then_succeeds_once_published(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    env = server_env(emulator, tmp_path / "cache", f"gs://{BUCKET}/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        assert_unavailable(server, f"gs://{BUCKET}/mpg/LATEST: object not found")

        publish(emulator)
        assert_recovers(server)  # the same process, no restart


def test_missing_bucket_gives_503_then_succeeds_once_created(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    env = server_env(emulator, tmp_path / "cache", "gs://later-bucket/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        assert_unavailable(server, "gs://later-bucket: bucket not found")

        emulator.client().create_bucket("later-bucket", project="test-project")
        publish(emulator, to="gs://later-bucket")
        assert_recovers(server)


def test_twenty_concurrent_cold_requests_make_one_download_and_one_load(
        emulator: StorageEmulator, tmp_path: Path) -> None:
    publish(emulator)
    env = server_env(emulator, tmp_path / "cache", f"gs://{BUCKET}/mpg")
    with FunctionServer("predict_mpg", env, tmp_path / "server.log") as server:
        start = threading.Barrier(CONCURRENT_REQUESTS)

        def cold_request(_: int) -> int:
            start.wait()
            return post(server).status_code

        with ThreadPoolExecutor(max_workers=CONCURRENT_REQUESTS) as pool:
            statuses = list(pool.map(cold_request, range(CONCURRENT_REQUESTS)))
        assert statuses == [200] * CONCURRENT_REQUESTS
        assert len(log_lines(server, "cold start: model loaded")) == 1
    assert emulator.downloads("model.tflite") == [f"mpg/{VERSION}/model.tflite"]
    assert len(emulator.downloads("manifest.json")) == 1


def test_image_model_loads_from_gs_too(emulator: StorageEmulator, tmp_path: Path,
                                       colour_model_root: Path) -> None:
    local = tmp_path / "bucket"
    tflite = copy_model(colour_model_root, local, "image") / "model.tflite"
    publish(emulator, local_bucket=local, models=("image",))
    env = {"IMAGE_MODEL_URI": f"gs://{BUCKET}/image", "STORAGE_EMULATOR_HOST": emulator.host,
           "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with FunctionServer("classify_image", env, tmp_path / "server.log") as server:
        meta = requests.get(server.url, timeout=TIMEOUT).json()
        assert meta["state"] == "loaded" and meta["model"]["name"] == "image"
        assert meta["model"]["source"].startswith(f"gs://{BUCKET}/image/")
        [cold] = log_lines(server, "cold start: model loaded")
    assert cold["downloaded_bytes"] > tflite.stat().st_size and cold["cache_hit"] is False
    assert sorted(name.rsplit("/", 1)[1] for name in emulator.downloads()) == [
        "LATEST", "labels.txt", "manifest.json", "model.tflite"]
