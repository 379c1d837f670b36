"""Fetch a model version from a local folder or a bucket, and verify it against its manifest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .errors import ModelError
from .manifest import LATEST_FILE, MANIFEST_FILE, VERSION_PATTERN, Manifest, parse_manifest, verify


class BucketSource(Protocol):
    """Where model versions live: a local folder or a Cloud Storage prefix."""

    def describe(self, path: str) -> str:
        """The URI of `path` below the source, for messages."""

    def read(self, path: str) -> bytes:
        """The bytes of `path` below the source; ModelError if it cannot be read."""


@dataclass
class ModelArtifacts:
    """A verified model version: its manifest and the verified bytes of the files it needs."""

    uri: str
    version_uri: str
    manifest: Manifest
    files: dict[str, bytes]
    timings_ms: dict[str, float] = field(default_factory=dict)
    downloaded_bytes: int = 0


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


def open_source(uri: str, cache_dir: Path) -> BucketSource:
    """The source a model URI names: gs://bucket/prefix, file://path or a plain path."""
    if uri.startswith("gs://"):
        from .gcs import GcsPrefix  # the Cloud Storage client is imported only when needed

        return GcsPrefix(uri, cache_dir)
    return LocalFolder(uri)


def fetch_version(
    uri: str, cache_dir: Path, needed: Callable[[Manifest], tuple[str, ...]] = lambda _: ()
) -> ModelArtifacts:
    """Resolve LATEST if `uri` names a model root, read the manifest, fetch and verify files.

    The model file is always fetched; `needed(manifest)` names further files (e.g. labels).
    """
    source = open_source(uri, cache_dir)
    started = time.perf_counter()
    version_path = _resolve_version(uri, source)
    manifest_path = f"{version_path}/{MANIFEST_FILE}" if version_path else MANIFEST_FILE
    manifest = parse_manifest(source.read(manifest_path), source.describe(manifest_path))
    resolved = time.perf_counter()

    files: dict[str, bytes] = {}
    for name in (manifest.model_file, *needed(manifest)):
        entry = manifest.files.get(name)
        if entry is None:
            raise ModelError(f"{source.describe(manifest_path)}: {name} is not listed in the files")
        path = f"{version_path}/{name}" if version_path else name
        data = source.read(path)
        verify(entry, data)
        files[name] = data
    fetched = time.perf_counter()
    return ModelArtifacts(
        uri=uri,
        version_uri=source.describe(version_path),
        manifest=manifest,
        files=files,
        timings_ms={
            "resolve_ms": round((resolved - started) * 1000, 2),
            "fetch_verify_ms": round((fetched - resolved) * 1000, 2),
        },
        downloaded_bytes=sum(len(data) for data in files.values()),
    )


def _resolve_version(uri: str, source: BucketSource) -> str:
    """'' when the URI names a version folder; else the version LATEST names."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    if VERSION_PATTERN.fullmatch(last):
        return ""
    latest = source.read(LATEST_FILE).decode("utf-8", "replace").strip()
    if not VERSION_PATTERN.fullmatch(latest):
        raise ModelError(f"{source.describe(LATEST_FILE)} does not name a version: {latest[:40]!r}")
    return latest
