"""fetch_version from gs:// through the real google-cloud-storage client and a fake HTTP layer.

No server runs here: the client's requests go to `FakeStorageHttp`, a requests.Session that
answers like Cloud Storage's JSON API from a dict of objects, and injects the faults the
emulator cannot produce (403, a transient 503, timeouts, a dropped connection, a bad crc32c).
The client's own retry policy, timeouts and crc32c check run for real.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import google_crc32c
import pytest
import requests
import urllib3
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from requests.structures import CaseInsensitiveDict

from modelserve import gcs
from modelserve.artifacts import LocalFolder, fetch_version
from modelserve.errors import ModelError
from modelserve.gcs import GcsPrefix
from modelserve.runtime import LazyModel

BUCKET = "models"
VERSION = "20261125T120000Z"
OTHER_VERSION = "20261126T120000Z"
MODEL_BYTES = b"\x1ctflite model bytes " * 50
LABEL_BYTES = b"background\ncat\n"
ENDPOINT = "http://storage.test"
SHORT_DEADLINE_S = 0.4

Fault = Callable[[str], requests.Response | None]


def manifest_for(version: str, files: dict[str, bytes]) -> bytes:
    return json.dumps({
        "schema_version": 1, "name": "mpg", "version": version, "task": "regression",
        "runtime": {"format": "tflite", "model_file": "model.tflite"},
        "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                  for name, data in files.items()},
        "input": {"kind": "tabular"}, "output": {"name": "mpg"},
    }).encode()


def crc32c_header(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None,
             url: str = ENDPOINT) -> requests.Response:
    """A requests.Response as the HTTP adapter would build it (the body streams from raw)."""
    headers = {"Content-Length": str(len(body)), **(headers or {})}
    result = requests.Response()
    result.status_code = status
    result.headers = CaseInsensitiveDict(headers)
    result.raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                                      preload_content=False, decode_content=False)
    result.url = url
    result.request = requests.Request("GET", url).prepare()
    return result


def error(status: int, message: str) -> requests.Response:
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    return response(status, body, {"Content-Type": "application/json"})


class FakeStorageHttp(requests.Session):
    """Cloud Storage's download and bucket endpoints over a dict; `faults` answer first."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, bytes] = {}
        self.buckets = {BUCKET}
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.timeouts: list[object] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *args: object, **kwargs: object) -> requests.Response:
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        with self._lock:
            self.requests.append(path)
            self.timeouts.append(kwargs.get("timeout"))
        for fault in list(self.faults):
            answer = fault(path)
            if answer is not None:
                return answer
        prefix = f"/download/storage/v1/b/{BUCKET}/o/"
        if path.startswith(prefix) and path[len(prefix):] in self.objects:
            data = self.objects[path[len(prefix):]]
            return response(200, data, {"X-Goog-Hash": f"crc32c={crc32c_header(data)}"}, url)
        bucket = path.removeprefix("/storage/v1/b/")
        if bucket in self.buckets:
            return response(200, json.dumps({"name": bucket}).encode(), url=url)
        return error(404, "No such object.")

    def object_reads(self) -> list[str]:
        """Object downloads so far (the client also reads bucket metadata in the background)."""
        prefix = f"/download/storage/v1/b/{BUCKET}/o/"
        return [path.removeprefix(prefix) for path in self.requests if path.startswith(prefix)]

    def downloads(self, suffix: str) -> int:
        return sum(1 for name in self.object_reads() if name.endswith(suffix))


def publish(http: FakeStorageHttp, version: str = VERSION, latest: bool = True,
            model: bytes = MODEL_BYTES) -> None:
    files = {"model.tflite": model, "labels.txt": LABEL_BYTES}
    for name, data in files.items():
        http.objects[f"mpg/{version}/{name}"] = data
    http.objects[f"mpg/{version}/manifest.json"] = manifest_for(version, files)
    if latest:
        http.objects["mpg/LATEST"] = f"{version}\n".encode()


@pytest.fixture
def http() -> FakeStorageHttp:
    fake = FakeStorageHttp()
    publish(fake)
    return fake


@pytest.fixture
def client(http: FakeStorageHttp) -> storage.Client:
    return storage.Client(project=None, credentials=AnonymousCredentials(), _http=http,
                          client_options={"api_endpoint": ENDPOINT})


def fetch(uri: str, cache: Path, client: storage.Client, deadline_s: float = SHORT_DEADLINE_S,
          labels: bool = False):
    source = GcsPrefix(uri, cache, client=lambda: client, retry_deadline_s=deadline_s)
    needed = (lambda _: ("labels.txt",)) if labels else (lambda _: ())
    return fetch_version(uri, cache, needed, source=source)


def cause(excinfo: pytest.ExceptionInfo[ModelError]) -> str:
    return str(excinfo.value)


def test_cold_fetch_downloads_verifies_and_caches_by_bucket_prefix_version(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client, labels=True)
    assert artifacts.files == {"model.tflite": MODEL_BYTES, "labels.txt": LABEL_BYTES}
    assert artifacts.version_uri == f"gs://{BUCKET}/mpg/{VERSION}"
    assert artifacts.cache_hit is False
    manifest_size = len(http.objects[f"mpg/{VERSION}/manifest.json"])
    latest_size = len(http.objects["mpg/LATEST"])
    assert artifacts.downloaded_bytes == (len(MODEL_BYTES) + len(LABEL_BYTES) + manifest_size
                                          + latest_size)
    assert {"open_ms", "resolve_ms", "download_ms", "verify_ms"} <= artifacts.timings_ms.keys()
    folder = tmp_path / BUCKET / "mpg" / VERSION
    assert sorted(p.name for p in folder.iterdir()) == ["labels.txt", "manifest.json",
                                                        "model.tflite"]
    assert (folder / "model.tflite").read_bytes() == MODEL_BYTES
    reads = [timeout for path, timeout in zip(http.requests, http.timeouts, strict=True)
             if path.startswith("/download/")]
    assert set(reads) == {gcs.REQUEST_TIMEOUT_S}  # every read has the per-request timeout


def test_pinned_cached_version_loads_without_touching_the_bucket(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    http.requests.clear()
    http.faults.append(lambda path: error(503, "storage is down"))
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert (artifacts.downloaded_bytes, artifacts.cache_hit) == (0, True)
    assert http.object_reads() == []


def test_model_root_reads_latest_then_uses_the_cached_files(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    http.requests.clear()
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert http.object_reads() == ["mpg/LATEST"]
    assert artifacts.cache_hit is True


def test_new_latest_is_downloaded_beside_the_cached_version(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    publish(http, OTHER_VERSION, model=MODEL_BYTES + b"v2")
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert artifacts.manifest.version == OTHER_VERSION
    assert artifacts.files["model.tflite"] == MODEL_BYTES + b"v2"
    assert (tmp_path / BUCKET / "mpg" / VERSION / "model.tflite").exists()


def test_cached_file_failing_verification_is_deleted_and_fetched_again(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    cached = tmp_path / BUCKET / "mpg" / VERSION / "model.tflite"
    cached.write_bytes(b"X" * len(MODEL_BYTES))  # same size, other bytes
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES  # the bad bytes were never returned
    assert cached.read_bytes() == MODEL_BYTES
    assert artifacts.cache_hit is False and http.downloads("model.tflite") == 2


def test_unreadable_cached_manifest_is_replaced_from_the_bucket(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    manifest = tmp_path / BUCKET / "mpg" / VERSION / "manifest.json"
    manifest.write_text("{not json")
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert json.loads(manifest.read_text())["version"] == VERSION


def test_download_with_wrong_sha256_is_discarded_and_never_cached(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    good = http.objects[f"mpg/{VERSION}/model.tflite"]
    http.objects[f"mpg/{VERSION}/model.tflite"] = b"Y" * len(good)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/{VERSION}/model.tflite: sha256 mismatch")
    assert "discarded" in cause(excinfo)
    folder = tmp_path / BUCKET / "mpg" / VERSION
    assert list(folder.iterdir()) == []  # no model, no temporary file, no manifest

    http.objects[f"mpg/{VERSION}/model.tflite"] = good
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == good


def test_crc32c_mismatch_in_transit_injected_at_client_boundary_is_discarded(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    def wrong_crc32c(path: str) -> requests.Response | None:
        if path.endswith("model.tflite"):
            return response(200, MODEL_BYTES, {"X-Goog-Hash": "crc32c=AAAAAA=="})
        return None

    http.faults.append(wrong_crc32c)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo) == (f"gs://{BUCKET}/mpg/{VERSION}/model.tflite: crc32c mismatch, "
                              "the download was corrupted; discarded")
    assert list((tmp_path / BUCKET / "mpg" / VERSION).iterdir()) == []

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_permission_denied_injected_at_client_boundary_gives_clear_cause(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    http.faults.append(lambda path: error(403, "caller does not have storage.objects.get"))
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: permission denied (403)")
    assert "roles/storage.objectViewer" in cause(excinfo)
    assert http.object_reads() == ["mpg/LATEST"]  # a 403 is not retried

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).cache_hit is False


def test_transient_503_injected_at_client_boundary_is_retried_then_succeeds(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    failures = {"left": 1}

    def unavailable_once(path: str) -> requests.Response | None:
        if path.endswith("model.tflite") and failures["left"]:
            failures["left"] -= 1
            return error(503, "Service Unavailable")
        return None

    http.faults.append(unavailable_once)
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client, deadline_s=gcs.RETRY_DEADLINE_S)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert http.downloads("model.tflite") == 2  # the client's retry policy, not ours


def test_persistent_503_injected_at_client_boundary_gives_up_at_the_deadline(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    http.faults.append(lambda path: error(503, "Service Unavailable"))
    started = time.monotonic()
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert time.monotonic() - started < SHORT_DEADLINE_S + 2.5  # bounded: deadline + one sleep
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: storage error 503")
    assert f"gave up after {SHORT_DEADLINE_S:g} s of retries" in cause(excinfo)

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_timeouts_injected_at_client_boundary_give_up_at_the_deadline(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    def time_out(path: str) -> requests.Response:
        raise requests.ReadTimeout("read timed out")

    http.faults.append(time_out)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: storage timed out")
    assert len(http.object_reads()) >= 1

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_dropped_connection_injected_at_client_boundary_says_unreachable(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    def refuse(path: str) -> requests.Response:
        raise requests.ConnectionError("[Errno 111] Connection refused")

    http.faults.append(refuse)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(
        f"gs://{BUCKET}/mpg/LATEST: storage unreachable: [Errno 111] Connection refused")

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_nothing_listening_says_unreachable_with_a_real_socket(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import free_port

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    real = storage.Client(project=None)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, real)
    assert "storage unreachable" in cause(excinfo)
    assert "Connection refused" in cause(excinfo)


def test_missing_object_and_missing_bucket_are_told_apart(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/nothing", tmp_path, client)
    assert cause(excinfo) == f"gs://{BUCKET}/nothing/LATEST: object not found"
    with pytest.raises(ModelError) as excinfo:
        fetch("gs://no-such-bucket/mpg", tmp_path, client)
    assert cause(excinfo) == "gs://no-such-bucket: bucket not found"
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


@pytest.mark.parametrize("uri", ["gs://models/../etc", "gs://models/a//b", "gs://Bad_Bucket/x"])
def test_uris_that_would_leave_the_cache_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(ModelError):
        GcsPrefix(uri, tmp_path, client=pytest.fail)


def test_twenty_concurrent_first_requests_download_once(
        tmp_path: Path, http: FakeStorageHttp, client: storage.Client) -> None:
    def load():
        time.sleep(0.05)  # widen the window in which the others arrive
        return fetch(f"gs://{BUCKET}/mpg", tmp_path, client)

    model = LazyModel(f"gs://{BUCKET}/mpg", load, retry_max_seconds=1)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: model.get(), range(20)))
    assert all(result is results[0] for result in results)
    assert http.downloads("model.tflite") == 1 and http.downloads("LATEST") == 1


def test_shared_client_is_created_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []

    def slow_client(project: object = None) -> object:
        time.sleep(0.02)
        created.append(project)
        return object()

    monkeypatch.setattr(gcs, "_client", None)
    monkeypatch.setattr(storage, "Client", slow_client)
    with ThreadPoolExecutor(max_workers=20) as pool:
        clients = set(map(id, pool.map(lambda _: gcs.shared_client(), range(20))))
    assert len(clients) == 1 and created == [None]


def test_emulator_host_makes_the_real_client_anonymous_without_a_project(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    real = storage.Client(project=None)  # what shared_client builds; no network here
    assert isinstance(real._credentials, AnonymousCredentials)
    assert real.project is None
    assert real.api_endpoint == "http://127.0.0.1:9"


def test_local_folder_is_read_in_place_without_a_cache(tmp_path: Path) -> None:
    files = {"model.tflite": MODEL_BYTES}
    folder = tmp_path / "bucket" / "mpg" / VERSION
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(MODEL_BYTES)
    (folder / "manifest.json").write_bytes(manifest_for(VERSION, files))
    (tmp_path / "bucket" / "mpg" / "LATEST").write_text(VERSION)
    cache = tmp_path / "cache"
    uri = str(tmp_path / "bucket" / "mpg")
    artifacts = fetch_version(uri, cache, source=LocalFolder(uri))
    assert artifacts.files == files and artifacts.cache_hit is None
    assert not cache.exists()
