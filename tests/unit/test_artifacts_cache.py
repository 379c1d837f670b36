"""fetch_version from gs:// through modelserve.gcs's reader and a local fake Cloud Storage.

`FakeStorage` is a real HTTP server on loopback that answers like Cloud Storage's JSON API
from a dict of objects, and injects the faults the emulator cannot produce (403, a transient
503, a stalled answer, a dropped connection, a bad crc32c). The reader's own retries with
back-off, timeouts and crc32c check run for real, over real sockets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import google_crc32c
import pytest

from modelserve import gcs
from modelserve.artifacts import LocalFolder, fetch_version
from modelserve.errors import ModelError
from modelserve.gcs import GcsPrefix, StorageReader, default_reader
from modelserve.runtime import LazyModel

BUCKET = "models"
VERSION = "20261125T120000Z"
OTHER_VERSION = "20261126T120000Z"
MODEL_BYTES = b"\x1ctflite model bytes " * 50
LABEL_BYTES = b"background\ncat\n"
SHORT_DEADLINE_S = 0.4
SHORT_TIMEOUT = (1.0, 0.3)
DOWNLOAD_PREFIX = f"/download/storage/v1/b/{BUCKET}/o/"


@dataclass
class Answer:
    """What the fake answers instead of the object: a status, or a stall, or a dropped socket."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] | None = None
    stall_s: float = 0.0
    drop: bool = False


Fault = Callable[[str], Answer | None]


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


def error(status: int, message: str) -> Answer:
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    return Answer(status, body, {"Content-Type": "application/json"})


class FakeStorage:
    """Cloud Storage's download and bucket endpoints over a dict; `faults` answer first."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.buckets = {BUCKET}
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.connections: set[tuple[str, int]] = set()
        self.last_authorization = ""
        self.last_metadata_flavor = ""
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Cloud Storage

            def do_GET(self) -> None:
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                with fake._lock:
                    fake.requests.append(path)
                    fake.connections.add(self.client_address)
                    fake.last_authorization = self.headers.get("Authorization", "")
                    fake.last_metadata_flavor = self.headers.get("Metadata-Flavor", "")
                answer = fake.answer(path)
                if answer.drop:
                    self.close_connection = True
                    return
                time.sleep(answer.stall_s)
                self.send_response(answer.status)
                for name, value in (answer.headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_GET  # the token endpoint

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, path: str) -> Answer:
        for fault in list(self.faults):
            answer = fault(path)
            if answer is not None:
                return answer
        if path.startswith(DOWNLOAD_PREFIX) and path[len(DOWNLOAD_PREFIX):] in self.objects:
            data = self.objects[path[len(DOWNLOAD_PREFIX):]]
            return Answer(200, data, {"X-Goog-Hash": f"crc32c={crc32c_header(data)}"})
        bucket = path.removeprefix("/storage/v1/b/")
        if bucket in self.buckets:
            return Answer(200, json.dumps({"name": bucket}).encode())
        return error(404, "No such object.")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def object_reads(self) -> list[str]:
        """Object downloads so far."""
        return [path.removeprefix(DOWNLOAD_PREFIX) for path in self.requests
                if path.startswith(DOWNLOAD_PREFIX)]

    def downloads(self, suffix: str) -> int:
        return sum(1 for name in self.object_reads() if name.endswith(suffix))


def publish(http: FakeStorage, version: str = VERSION, latest: bool = True,
            model: bytes = MODEL_BYTES) -> None:
    files = {"model.tflite": model, "labels.txt": LABEL_BYTES}
    for name, data in files.items():
        http.objects[f"mpg/{version}/{name}"] = data
    http.objects[f"mpg/{version}/manifest.json"] = manifest_for(version, files)
    if latest:
        http.objects["mpg/LATEST"] = f"{version}\n".encode()


@pytest.fixture
def http() -> Iterator[FakeStorage]:
    fake = FakeStorage()
    publish(fake)
    yield fake
    fake.close()


@pytest.fixture
def client(http: FakeStorage) -> StorageReader:
    return StorageReader(http.endpoint)  # anonymous, as with STORAGE_EMULATOR_HOST


def fetch(uri: str, cache: Path, client: StorageReader, deadline_s: float = SHORT_DEADLINE_S,
          labels: bool = False, timeout: tuple[float, float] = gcs.REQUEST_TIMEOUT_S):
    source = GcsPrefix(uri, cache, client=lambda: client, retry_deadline_s=deadline_s,
                       request_timeout=timeout)
    needed = (lambda _: ("labels.txt",)) if labels else (lambda _: ())
    return fetch_version(uri, cache, needed, source=source)


def cause(excinfo: pytest.ExceptionInfo[ModelError]) -> str:
    return str(excinfo.value)


def test_cold_fetch_downloads_verifies_and_caches_by_bucket_prefix_version(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
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
    assert http.object_reads() == ["mpg/LATEST", f"mpg/{VERSION}/manifest.json",
                                   f"mpg/{VERSION}/model.tflite", f"mpg/{VERSION}/labels.txt"]


def test_pinned_cached_version_loads_without_touching_the_bucket(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    http.requests.clear()
    http.faults.append(lambda path: error(503, "storage is down"))
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert (artifacts.downloaded_bytes, artifacts.cache_hit) == (0, True)
    assert http.object_reads() == []


def test_model_root_reads_latest_then_uses_the_cached_files(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    http.requests.clear()
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert http.object_reads() == ["mpg/LATEST"]
    assert artifacts.cache_hit is True


def test_new_latest_is_downloaded_beside_the_cached_version(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    publish(http, OTHER_VERSION, model=MODEL_BYTES + b"v2")
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert artifacts.manifest.version == OTHER_VERSION
    assert artifacts.files["model.tflite"] == MODEL_BYTES + b"v2"
    assert (tmp_path / BUCKET / "mpg" / VERSION / "model.tflite").exists()


def test_cached_file_failing_verification_is_deleted_and_fetched_again(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    cached = tmp_path / BUCKET / "mpg" / VERSION / "model.tflite"
    cached.write_bytes(b"X" * len(MODEL_BYTES))  # same size, other bytes
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES  # the bad bytes were never returned
    assert cached.read_bytes() == MODEL_BYTES
    assert artifacts.cache_hit is False and http.downloads("model.tflite") == 2


def test_unreadable_cached_manifest_is_replaced_from_the_bucket(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    uri = f"gs://{BUCKET}/mpg/{VERSION}"
    fetch(uri, tmp_path, client)
    manifest = tmp_path / BUCKET / "mpg" / VERSION / "manifest.json"
    manifest.write_text("{not json")
    artifacts = fetch(uri, tmp_path, client)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert json.loads(manifest.read_text())["version"] == VERSION


def test_download_with_wrong_sha256_is_discarded_and_never_cached(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
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
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    def wrong_crc32c(path: str) -> Answer | None:
        if path.endswith("model.tflite"):
            return Answer(200, MODEL_BYTES, {"X-Goog-Hash": "crc32c=AAAAAA=="})
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
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    http.faults.append(lambda path: error(403, "caller does not have storage.objects.get"))
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: permission denied (403)")
    assert "roles/storage.objectViewer" in cause(excinfo)
    assert http.object_reads() == ["mpg/LATEST"]  # a 403 is not retried

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).cache_hit is False


def test_transient_503_injected_at_client_boundary_is_retried_then_succeeds(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    failures = {"left": 1}

    def unavailable_once(path: str) -> Answer | None:
        if path.endswith("model.tflite") and failures["left"]:
            failures["left"] -= 1
            return error(503, "Service Unavailable")
        return None

    http.faults.append(unavailable_once)
    artifacts = fetch(f"gs://{BUCKET}/mpg", tmp_path, client, deadline_s=gcs.RETRY_DEADLINE_S)
    assert artifacts.files["model.tflite"] == MODEL_BYTES
    assert http.downloads("model.tflite") == 2  # retried after a back-off


def test_persistent_503_injected_at_client_boundary_gives_up_at_the_deadline(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
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
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    http.faults.append(lambda path: Answer(stall_s=SHORT_TIMEOUT[1] * 3))
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client, timeout=SHORT_TIMEOUT)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: storage timed out")
    assert len(http.object_reads()) >= 1

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_dropped_connection_injected_at_client_boundary_says_unreachable(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    http.faults.append(lambda path: Answer(drop=True))
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: storage unreachable: ")
    assert "gave up after" in cause(excinfo)

    http.faults.clear()
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path, client).files["model.tflite"] == MODEL_BYTES


def test_nothing_listening_says_unreachable_with_a_real_socket(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import free_port

    real = default_reader({"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, real)
    assert "storage unreachable" in cause(excinfo)
    assert "Connection refused" in cause(excinfo)


def test_missing_object_and_missing_bucket_are_told_apart(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
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
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
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

    def slow_reader() -> object:
        time.sleep(0.02)
        created.append(1)
        return object()

    monkeypatch.setattr(gcs, "_client", None)
    monkeypatch.setattr(gcs, "default_reader", slow_reader)
    with ThreadPoolExecutor(max_workers=20) as pool:
        clients = set(map(id, pool.map(lambda _: gcs.shared_client(), range(20))))
    assert len(clients) == 1 and created == [1]


def test_emulator_host_makes_the_reader_anonymous_on_that_endpoint() -> None:
    reader = default_reader({"STORAGE_EMULATOR_HOST": "127.0.0.1:9"})  # no network here
    assert reader.endpoint == "http://127.0.0.1:9" and reader._credentials is None
    assert default_reader({"STORAGE_EMULATOR_HOST": "http://localhost:9"}).endpoint == (
        "http://localhost:9")


def test_without_emulator_application_default_credentials_are_asked_read_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    asked: list[object] = []
    token = object()
    monkeypatch.setattr(google.auth, "default",
                        lambda scopes, request: asked.append(scopes) or (token, None))
    reader = default_reader({"GOOGLE_APPLICATION_CREDENTIALS": "/a/key.json"})
    assert reader.endpoint == gcs.PUBLIC_ENDPOINT and reader._credentials is token
    assert asked == [[gcs.READ_ONLY_SCOPE]]


def test_on_google_cloud_the_metadata_servers_token_is_used_without_google_auth(
        tmp_path: Path, http: FakeStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    monkeypatch.setattr(google.auth, "default", pytest.fail)  # never reached
    token = json.dumps({"access_token": "meta-1", "expires_in": 3599, "token_type": "Bearer"})

    def metadata(path: str) -> Answer | None:
        if path != gcs.METADATA_TOKEN_PATH:
            return None
        if http.last_metadata_flavor != "Google":
            return error(403, "Missing Metadata-Flavor header")
        return Answer(200, token.encode(), {"Content-Type": "application/json"})

    http.faults.append(metadata)
    host = http.endpoint.removeprefix("http://")
    reader = default_reader({"GCE_METADATA_HOST": host, "HOME": str(tmp_path)})
    assert reader.endpoint == gcs.PUBLIC_ENDPOINT
    seen: list[str] = []
    http.faults.append(lambda path: seen.append(http.last_authorization) or None)
    local = StorageReader(http.endpoint, reader._credentials)  # the same credentials, locally
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path / "cache", local).cache_hit is False
    assert set(seen) == {"Bearer meta-1"}
    assert http.requests.count(gcs.METADATA_TOKEN_PATH) == 1  # one token for every read


def test_a_metadata_token_is_refreshed_before_it_expires(http: FakeStorage) -> None:
    tokens = iter(["t1", "t2"])
    http.faults.append(lambda path: Answer(200, json.dumps(
        {"access_token": next(tokens), "expires_in": 120}).encode()))
    now = [0.0]
    credentials = gcs.MetadataCredentials(http.endpoint.removeprefix("http://"),
                                          clock=lambda: now[0])
    headers: dict[str, str] = {}
    credentials.before_request(None, "GET", "/", headers)
    now[0] = 120 - gcs.TOKEN_REFRESH_MARGIN_S - 1
    credentials.before_request(None, "GET", "/", headers)
    assert headers["Authorization"] == "Bearer t1"
    now[0] += 1
    credentials.before_request(None, "GET", "/", headers)
    assert headers["Authorization"] == "Bearer t2"


def test_off_google_cloud_application_default_credentials_decide(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    from tests.helpers import free_port

    found = object()
    monkeypatch.setattr(google.auth, "default", lambda scopes, request: (found, None))
    nothing_there = {"GCE_METADATA_HOST": f"127.0.0.1:{free_port()}", "HOME": str(tmp_path)}
    assert default_reader(nothing_there)._credentials is found
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")  # the user's gcloud credentials: google.auth reads them, not us
    assert default_reader({"HOME": str(tmp_path)})._credentials is found


def test_credentials_send_their_token_and_a_failed_refresh_says_so(
        tmp_path: Path, http: FakeStorage) -> None:
    from google.oauth2.credentials import Credentials

    seen: list[str] = []
    http.faults.append(lambda path: seen.append(http.last_authorization) or None)
    with_token = StorageReader(http.endpoint, Credentials(token="token-1"))
    assert fetch(f"gs://{BUCKET}/mpg", tmp_path / "a", with_token).cache_hit is False
    assert set(seen) == {"Bearer token-1"}

    http.faults.clear()
    http.faults.append(lambda path: error(400, "invalid_grant") if path == "/token" else None)
    expired = Credentials(token=None, refresh_token="r", client_id="c", client_secret="s",
                          token_uri=f"{http.endpoint}/token")
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path / "b", StorageReader(http.endpoint, expired))
    assert cause(excinfo).startswith(f"gs://{BUCKET}/mpg/LATEST: no usable Google Cloud "
                                     "credentials")


def test_md5_is_checked_when_storage_sends_no_crc32c(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    def md5_only(path: str) -> Answer | None:
        if path.endswith("model.tflite"):
            digest = base64.b64encode(hashlib.md5(MODEL_BYTES[:-1] + b"?").digest()).decode()
            return Answer(200, MODEL_BYTES, {"X-Goog-Hash": f"md5={digest}"})
        return None

    http.faults.append(md5_only)
    with pytest.raises(ModelError) as excinfo:
        fetch(f"gs://{BUCKET}/mpg", tmp_path, client)
    assert cause(excinfo).endswith("model.tflite: md5 mismatch, the download was corrupted; "
                                   "discarded")


def test_a_cold_fetch_reuses_one_connection(
        tmp_path: Path, http: FakeStorage, client: StorageReader) -> None:
    fetch(f"gs://{BUCKET}/mpg", tmp_path, client, labels=True)
    assert len(http.object_reads()) == 4 and len(http.connections) == 1


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
