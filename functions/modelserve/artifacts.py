"""Fetch a model version from a local folder or a bucket, and verify it against its manifest.

A local folder (a path or file://) is read in place. A bucket (gs://) goes through a cache,
`<MODEL_CACHE_DIR>/<bucket>/<prefix>/<version>/<file>`:

- each file is downloaded to a temporary name beside its final one, checked against the
  manifest's size and sha256, and only then renamed into place (os.replace), so the cache
  never holds a half or unverified file; a file that fails is deleted and the load fails;
- the manifest is written into the cache last, after every needed file is in place;
- versions are immutable, so a version whose cached manifest and files verify is loaded
  without touching the bucket (a pinned URI then needs no network at all; a model root still
  reads LATEST). A cached file that fails verification is deleted and fetched again.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from .contract import (
    LATEST_FILE,
    MANIFEST_FILE,
    VERSION_PATTERN,
    FileEntry,
    Manifest,
    parse_manifest,
    verify,
)
from .errors import ModelError
from .logs import get_logger, milliseconds

PARTIAL_SUFFIX = ".part"


class BucketSource(Protocol):
    """Where model versions live: a local folder or a Cloud Storage prefix."""

    def describe(self, path: str) -> str:
        """The URI of `path` below the source, for messages."""

    def read(self, path: str) -> bytes:
        """The bytes of `path` below the source; ModelError if it cannot be read."""

    def download(self, path: str, handle: BinaryIO) -> None:
        """Write the bytes of `path` to `handle`; ModelError if it cannot be read."""

    def cache_folder(self, version_path: str) -> Path | None:
        """Where a version's files are cached; None for a source that is read in place."""


@dataclass
class ModelArtifacts:
    """A verified model version: its manifest and the verified bytes of the files it needs.

    `timings_ms` has open_ms (the source), resolve_ms (LATEST and manifest; on the first
    bucket request also the reader's creation: credentials, connection), download_ms and verify_ms;
    `downloaded_bytes` counts what was read from the bucket (0 for a pinned, cached version);
    `cache_hit` is True when every file came from the cache, None when there is no cache.
    """

    uri: str
    version_uri: str
    manifest: Manifest
    files: dict[str, bytes]
    timings_ms: dict[str, float] = field(default_factory=dict)
    downloaded_bytes: int = 0
    cache_hit: bool | None = None


class LocalFolder:
    """A bucket stood in for by a local folder (a path or a file:// URI)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root.removeprefix("file://"))

    def describe(self, path: str) -> str:
        return str(self.root / path) if path else str(self.root)

    def read(self, path: str) -> bytes:
        target = self.root / path
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{target} does not exist") from None
        except OSError as exc:
            raise ModelError(f"{target} cannot be read ({exc.strerror})") from None

    def download(self, path: str, handle: BinaryIO) -> None:
        handle.write(self.read(path))

    def cache_folder(self, version_path: str) -> None:
        return None  # read in place: a local folder needs no cache


def open_source(uri: str, cache_dir: Path) -> BucketSource:
    """The source a model URI names: gs://bucket/prefix, file://path or a plain path."""
    if uri.startswith("gs://"):
        from .gcs import GcsPrefix  # imported only when a bucket is named

        return GcsPrefix(uri, cache_dir)
    return LocalFolder(uri)


@dataclass
class _Tally:
    """What one fetch cost."""

    downloaded_bytes: int = 0
    downloaded_files: int = 0
    download_s: float = 0.0
    verify_s: float = 0.0


def fetch_version(
    uri: str,
    cache_dir: Path,
    needed: Callable[[Manifest], tuple[str, ...]] = lambda _: (),
    source: BucketSource | None = None,
) -> ModelArtifacts:
    """Resolve LATEST if `uri` names a model root, read the manifest, fetch and verify files.

    The model file is always fetched; `needed(manifest)` names further files (e.g. labels).
    `source` replaces the one `uri` names (tests).
    """
    started = time.perf_counter()
    source = open_source(uri, cache_dir) if source is None else source
    opened = time.perf_counter()
    tally = _Tally()
    version_path = _resolve_version(uri, source, tally)
    folder = source.cache_folder(version_path)
    manifest, remote_manifest = _manifest(source, version_path, folder, tally)
    resolved = time.perf_counter()
    try:
        files = {
            name: _fetch_file(source, version_path, folder, _entry(manifest, name), tally)
            for name in dict.fromkeys((manifest.model_file, *needed(manifest)))
        }
    except ModelError:
        if folder is not None and remote_manifest is None:
            _discard(folder / MANIFEST_FILE)  # the cached manifest may be what is wrong
        raise
    if folder is not None and remote_manifest is not None:
        _cache_manifest(folder / MANIFEST_FILE, remote_manifest)  # last: the version is complete
    return ModelArtifacts(
        uri=uri,
        version_uri=source.describe(version_path),
        manifest=manifest,
        files=files,
        timings_ms={
            "open_ms": milliseconds(opened - started),
            "resolve_ms": milliseconds(resolved - opened),
            "download_ms": milliseconds(tally.download_s),
            "verify_ms": milliseconds(tally.verify_s),
        },
        downloaded_bytes=tally.downloaded_bytes,
        cache_hit=None if folder is None else tally.downloaded_files == 0,
    )


def _resolve_version(uri: str, source: BucketSource, tally: _Tally) -> str:
    """'' when the URI names a version folder; else the version LATEST names."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    if VERSION_PATTERN.fullmatch(last):
        return ""
    data = source.read(LATEST_FILE)
    tally.downloaded_bytes += len(data)
    latest = data.decode("utf-8", "replace").strip()
    if not VERSION_PATTERN.fullmatch(latest):
        raise ModelError(f"{source.describe(LATEST_FILE)} does not name a version: {latest[:40]!r}")
    return latest


def _manifest(
    source: BucketSource, version_path: str, folder: Path | None, tally: _Tally
) -> tuple[Manifest, bytes | None]:
    """The version's manifest, from the cache when it is there; and its bytes if fetched."""
    if folder is not None:
        cached = _cached_manifest(folder)
        if cached is not None:
            return cached, None
    path = _join(version_path, MANIFEST_FILE)
    data = source.read(path)
    tally.downloaded_bytes += len(data)
    return parse_manifest(data, source.describe(path)), data


def _cached_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return parse_manifest(data, str(path))
    except ModelError as exc:
        _discard_bad_cache_file(path, exc)
        return None


def _entry(manifest: Manifest, name: str) -> FileEntry:
    entry = manifest.files.get(name)
    if entry is None:
        raise ModelError(f"manifest of {manifest.name} {manifest.version}: {name} is not listed")
    return entry


def _fetch_file(
    source: BucketSource, version_path: str, folder: Path | None, entry: FileEntry, tally: _Tally
) -> bytes:
    path = _join(version_path, entry.name)
    if folder is None:  # read in place
        data = source.read(path)
        tally.downloaded_bytes += len(data)
        _verify(entry, data, source.describe(path), tally)
        return data
    cached = _cached_file(folder / entry.name, entry, tally)
    if cached is not None:
        return cached
    return _download(source, path, folder, entry, tally)


def _cached_file(target: Path, entry: FileEntry, tally: _Tally) -> bytes | None:
    """The verified bytes of a cached file; None (and the file deleted) if it does not verify."""
    try:
        data = target.read_bytes()
    except OSError:
        return None
    try:
        _verify(entry, data, str(target), tally)
    except ModelError as exc:
        _discard_bad_cache_file(target, exc)
        return None
    return data


def _download(
    source: BucketSource, path: str, folder: Path, entry: FileEntry, tally: _Tally
) -> bytes:
    """Download into a temporary file beside the target, verify, then rename it into place."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(
            prefix=f".{entry.name}.", suffix=PARTIAL_SUFFIX, dir=folder
        )
    except OSError as exc:
        raise ModelError(f"cache folder {folder} is not writable ({exc.strerror})") from None
    try:
        started = time.perf_counter()
        with os.fdopen(descriptor, "wb") as handle:
            source.download(path, handle)
        tally.download_s += time.perf_counter() - started
        data = Path(temp_name).read_bytes()
        tally.downloaded_bytes += len(data)
        tally.downloaded_files += 1
        try:
            _verify(entry, data, source.describe(path), tally)
        except ModelError as exc:
            raise ModelError(f"{exc}; the download was discarded") from None
        os.replace(temp_name, folder / entry.name)
    except BaseException:
        _discard(Path(temp_name))
        raise
    return data


def _verify(entry: FileEntry, data: bytes, where: str, tally: _Tally) -> None:
    """manifest.verify, with the message naming `where` the bytes came from."""
    started = time.perf_counter()
    try:
        verify(entry, data)
    except ModelError as exc:
        raise ModelError(f"{where}: {str(exc).removeprefix(entry.name + ': ')}") from None
    finally:
        tally.verify_s += time.perf_counter() - started


def _discard_bad_cache_file(path: Path, cause: ModelError) -> None:
    get_logger().warning(
        "cached model file failed verification; deleted, it will be fetched again",
        extra={"fields": {"path": str(path), "cause": str(cause)}},
    )
    _discard(path)


def _cache_manifest(path: Path, data: bytes) -> None:
    """Write the manifest into the cache (temp file + os.replace); a failure only costs reuse."""
    try:
        descriptor, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            os.replace(temp_name, path)
        except BaseException:
            _discard(Path(temp_name))
            raise
    except OSError as exc:
        get_logger().warning(
            "model cache: manifest not written; the next cold start downloads again",
            extra={"fields": {"path": str(path), "cause": exc.strerror}},
        )


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _join(version_path: str, name: str) -> str:
    return f"{version_path}/{name}" if version_path else name
