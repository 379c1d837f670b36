"""The manifest.json of a model version: parsing, checking and checksum verification."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ModelError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "LATEST"
VERSION_PATTERN = re.compile(r"\d{8}T\d{6}Z")
_REQUIRED_KEYS = (
    "schema_version",
    "name",
    "version",
    "task",
    "runtime",
    "files",
    "input",
    "output",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileEntry:
    """A file of the version as the manifest lists it."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: what the version is and which files it must contain."""

    name: str
    version: str
    task: str
    model_file: str
    files: dict[str, FileEntry]
    input: dict[str, Any]
    output: dict[str, Any]
    raw: dict[str, Any]

    @property
    def model_sha256(self) -> str:
        return self.files[self.model_file].sha256


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Parse and check manifest bytes; ModelError names `source` and what is wrong."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: manifest is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{source}: manifest must be a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        raise ModelError(f"{source}: manifest lacks {', '.join(missing)}")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ModelError(
            f"{source}: manifest schema_version {raw['schema_version']!r} is not {SCHEMA_VERSION}"
        )
    files = _parse_files(raw["files"], source)
    model_file = raw["runtime"].get("model_file") if isinstance(raw["runtime"], dict) else None
    if model_file not in files:
        raise ModelError(f"{source}: runtime.model_file {model_file!r} is not among the files")
    if not isinstance(raw["input"], dict) or not isinstance(raw["output"], dict):
        raise ModelError(f"{source}: manifest input and output must be objects")
    return Manifest(
        name=str(raw["name"]),
        version=str(raw["version"]),
        task=str(raw["task"]),
        model_file=model_file,
        files=files,
        input=raw["input"],
        output=raw["output"],
        raw=raw,
    )


def _parse_files(value: Any, source: str) -> dict[str, FileEntry]:
    if not isinstance(value, dict) or not value:
        raise ModelError(f"{source}: manifest files must be a non-empty object")
    files = {}
    for name, entry in value.items():
        if not _is_plain_file_name(name):
            raise ModelError(f"{source}: file name {name!r} is not a plain file name")
        sha256 = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            raise ModelError(f"{source}: {name} has no valid sha256")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise ModelError(f"{source}: {name} has no valid size")
        files[name] = FileEntry(name, sha256, size)
    return files


def _is_plain_file_name(name: str) -> bool:
    # Names from a manifest become cache paths: no separators, no dot-dot, nothing hidden.
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name)) and ".." not in name


def verify(entry: FileEntry, data: bytes) -> None:
    """Raise ModelError unless `data` has the size and sha256 the manifest lists for it."""
    if len(data) != entry.size:
        raise ModelError(
            f"{entry.name}: size {len(data)} does not match the manifest's {entry.size}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise ModelError(
            f"{entry.name}: sha256 mismatch "
            f"(manifest {entry.sha256[:12]}..., file {digest[:12]}...)"
        )
