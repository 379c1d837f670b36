"""Manifest parsing and checksum verification."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelserve.contract import FileEntry, parse_manifest, verify
from modelserve.errors import ModelError

DATA = b"model bytes"
GOOD = {
    "schema_version": 1, "name": "mpg", "version": "20261125T120000Z", "task": "regression",
    "runtime": {"format": "tflite", "model_file": "model.tflite"},
    "files": {"model.tflite": {"sha256": hashlib.sha256(DATA).hexdigest(), "size": len(DATA)}},
    "input": {"kind": "tabular", "features": []}, "output": {"name": "mpg"},
}


def encoded(**changes: object) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_good_manifest_parses() -> None:
    manifest = parse_manifest(encoded(), "m.json")
    assert manifest.model_file == "model.tflite"
    assert manifest.model_sha256 == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize(("data", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (json.dumps({"name": "mpg"}).encode(), "lacks schema_version"),
    (encoded(schema_version=2), "schema_version 2 is not 1"),
    (encoded(runtime={"model_file": "other.tflite"}), "is not among the files"),
    (encoded(files={"../etc/passwd": {"sha256": "0" * 64, "size": 1}}), "not a plain file name"),
    (encoded(files={"model.tflite": {"sha256": "abc", "size": 1}}), "no valid sha256"),
    (encoded(files={"model.tflite": {"sha256": "0" * 64, "size": -1}}), "no valid size"),
])
def test_bad_manifest_is_refused_with_reason(data: bytes, message: str) -> None:
    with pytest.raises(ModelError, match=message) as error:
        parse_manifest(data, "bucket/mpg/v/manifest.json")
    assert str(error.value).startswith("bucket/mpg/v/manifest.json")


def test_verify_accepts_matching_bytes() -> None:
    verify(FileEntry("model.tflite", hashlib.sha256(DATA).hexdigest(), len(DATA)), DATA)


def test_verify_refuses_changed_bytes_of_same_size() -> None:
    entry = FileEntry("model.tflite", hashlib.sha256(DATA).hexdigest(), len(DATA))
    with pytest.raises(ModelError, match=r"model\.tflite: sha256 mismatch"):
        verify(entry, b"model bytez")


def test_verify_refuses_wrong_size() -> None:
    entry = FileEntry("model.tflite", hashlib.sha256(DATA).hexdigest(), len(DATA))
    with pytest.raises(ModelError, match="size 3 does not match"):
        verify(entry, b"abc")
