"""Bucket-writing helpers shared by the export commands (train/bucket.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from modelserve import contract
from modelserve.errors import ModelError
from train import bucket

MOMENT = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
VERSION = "20261125T120000Z"


def _manifest(version: str = VERSION) -> dict[str, object]:
    """A minimal manifest with every required key except `files`."""
    return {
        "schema_version": 1,
        "name": "demo",
        "version": version,
        "task": "regression",
        "created_at": "2026-11-25T12:00:00Z",
        "runtime": {"format": "tflite", "model_file": "model.tflite"},
        "input": {},
        "output": {},
        "training": {},
        "metrics": {},
    }


@pytest.fixture
def staged(tmp_path):
    """A model root with one staged version holding two files."""
    root = tmp_path / "demo"
    with bucket.staging_folder(root) as staging:
        (staging / "model.tflite").write_bytes(b"tflite bytes")
        (staging / "metrics.json").write_text("{}\n")
        yield root, staging


def test_sha256_and_file_entry(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"abc")

    assert contract.sha256_file(path) == hashlib.sha256(b"abc").hexdigest()
    assert contract.file_entry(path) == {"sha256": hashlib.sha256(b"abc").hexdigest(), "size": 3}


def test_version_name_is_utc_and_sortable():
    assert contract.version_name(MOMENT) == VERSION
    assert contract.parse_version(VERSION) == MOMENT


def test_next_version_bumps_a_second_while_taken(tmp_path):
    (tmp_path / VERSION).mkdir()
    (tmp_path / "20261125T120001Z").mkdir()

    assert bucket.next_version(tmp_path, MOMENT) == "20261125T120002Z"


def test_write_manifest_lists_every_other_file(staged):
    _, staging = staged

    manifest = bucket.write_manifest(staging, _manifest())

    written = json.loads((staging / "manifest.json").read_text())
    assert written == manifest
    assert set(written["files"]) == {"model.tflite", "metrics.json"}
    assert written["files"]["model.tflite"] == contract.file_entry(staging / "model.tflite")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"version": "latest"}, "latest"),
        ({"runtime": {"format": "tflite", "model_file": "absent.tflite"}}, "absent.tflite"),
    ],
)
def test_write_manifest_refuses_a_bad_manifest(staged, change, message):
    _, staging = staged

    with pytest.raises(ValueError, match=message):
        bucket.write_manifest(staging, {**_manifest(), **change})
    assert not (staging / "manifest.json").exists()


def test_write_manifest_names_missing_keys(staged):
    _, staging = staged
    manifest = _manifest()
    del manifest["metrics"]

    with pytest.raises(ValueError, match="metrics"):
        bucket.write_manifest(staging, manifest)


def test_publish_then_latest(staged):
    root, staging = staged
    bucket.write_manifest(staging, _manifest())

    folder = bucket.publish_version(staging, root, VERSION)
    bucket.update_latest(root, VERSION)

    assert folder == root / VERSION
    assert not staging.exists()
    assert bucket.read_latest(root) == VERSION
    assert (root / "LATEST").read_text() == VERSION + "\n"
    assert contract.verify_folder(folder).version == VERSION
    assert sorted(path.name for path in root.iterdir()) == [VERSION, "LATEST"]


def test_publish_never_overwrites(staged):
    root, staging = staged
    (root / VERSION).mkdir()
    (root / VERSION / "keep").write_text("old")

    with pytest.raises(bucket.VersionExistsError):
        bucket.publish_version(staging, root, VERSION)
    assert (root / VERSION / "keep").read_text() == "old"
    assert staging.is_dir()


def test_staging_folder_is_removed_on_failure(tmp_path):
    root = tmp_path / "demo"

    with pytest.raises(RuntimeError), bucket.staging_folder(root) as staging:
        (staging / "half").write_text("x")
        raise RuntimeError("export failed")

    assert list(root.iterdir()) == []


def test_latest_must_name_a_complete_version(tmp_path):
    (tmp_path / VERSION).mkdir()

    with pytest.raises(FileNotFoundError):
        bucket.update_latest(tmp_path, VERSION)
    assert not (tmp_path / "LATEST").exists()


def test_verify_folder_catches_a_changed_file(staged):
    root, staging = staged
    bucket.write_manifest(staging, _manifest())
    folder = bucket.publish_version(staging, root, VERSION)
    (folder / "metrics.json").write_text('{"changed": true}\n')

    with pytest.raises(ModelError, match=r"metrics\.json"):
        contract.verify_folder(folder)
