"""`python -m train.mpg` end to end, and the committed model in model_bucket/mpg."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from train import mpg_data

REPO = Path(__file__).resolve().parents[2]
COMMITTED_ROOT = REPO / "model_bucket" / "mpg"
VERSION_FILES = {
    "manifest.json",
    "model.tflite",
    "model.keras",
    "metrics.json",
    "loss_curve.png",
    "predicted_vs_actual.png",
}
MANIFEST_KEYS = {
    "schema_version",
    "name",
    "version",
    "task",
    "created_at",
    "runtime",
    "files",
    "input",
    "output",
    "training",
    "metrics",
}
TARGET_RMSE = 2.7
RMSE_AGREEMENT = 0.01
SMOKE_TIMEOUT_SECONDS = 120


def _latest_folder(model_root: Path) -> Path:
    """The version folder LATEST names."""
    version = (model_root / "LATEST").read_text().strip()
    return model_root / version


def _assert_files_match_manifest(folder: Path) -> dict:
    """Every file but the manifest is listed with its true sha256 and size; the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest.keys() >= MANIFEST_KEYS
    on_disk = {path.name for path in folder.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}, name
    return manifest


def _run_tflite(model_path: Path, features: np.ndarray) -> np.ndarray:
    """Predictions of a `.tflite`, one [1, 7] row at a time, as the function runs it."""
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    (output_detail,) = interpreter.get_output_details()
    assert input_detail["dtype"] == np.float32
    assert list(input_detail["shape"]) == [1, 7]
    answers = []
    for row in features:
        interpreter.set_tensor(input_detail["index"], row.reshape(1, 7))
        interpreter.invoke()
        answers.append(float(interpreter.get_tensor(output_detail["index"])[0][0]))
    return np.asarray(answers)


@pytest.mark.slow
def test_training_smoke_exports_a_complete_version(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "train.mpg", "--epochs", "3", "--bucket", str(tmp_path), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_SECONDS,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    model_root = tmp_path / "mpg"
    folder = _latest_folder(model_root)
    assert sorted(path.name for path in model_root.iterdir()) == sorted(["LATEST", folder.name])
    assert {path.name for path in folder.iterdir()} == VERSION_FILES
    manifest = _assert_files_match_manifest(folder)
    assert manifest["version"] == folder.name
    assert manifest["name"] == "mpg"
    assert manifest["runtime"] == {"format": "tflite", "model_file": "model.tflite"}
    assert manifest["training"]["epochs"]["max"] == 3
    assert manifest["metrics"]["parity_max_abs_diff"] <= 0.01
    assert str(folder) in completed.stdout


@pytest.mark.slow
def test_failed_parity_publishes_nothing(tmp_path, monkeypatch, capsys):
    from train import mpg, tabular_model

    real_tflite_predict = tabular_model.tflite_predict

    def off_by_one(model_path, features):
        return real_tflite_predict(model_path, features) + 1.0

    monkeypatch.setattr(tabular_model, "tflite_predict", off_by_one)

    exit_code = mpg.main(["--epochs", "1", "--bucket", str(tmp_path), "--quiet"])

    assert exit_code == mpg.EXIT_PARITY
    assert "parity" in capsys.readouterr().err
    assert list((tmp_path / "mpg").iterdir()) == []  # no version, no staging, no LATEST


def test_committed_model_matches_its_manifest():
    folder = _latest_folder(COMMITTED_ROOT)

    manifest = _assert_files_match_manifest(folder)

    assert manifest["schema_version"] == 1
    assert manifest["version"] == folder.name
    assert manifest["task"] == "regression"
    features = manifest["input"]["features"]
    assert [feature["name"] for feature in features] == list(mpg_data.FEATURES)


def test_committed_tflite_meets_the_target_on_the_held_out_split():
    folder = _latest_folder(COMMITTED_ROOT)
    manifest = json.loads((folder / "manifest.json").read_text())
    training = manifest["training"]
    assert training["data"]["source"] == "vega_datasets"
    assert (
        training["data"]["sha256"]
        == hashlib.sha256(mpg_data.VEGA_CARS_PATH.read_bytes()).hexdigest()
    )

    used = mpg_data.with_target(mpg_data.load_vega())
    _, test = mpg_data.split(used, training["seed"])
    test = mpg_data.impute(test, training["imputation"]["horsepower"]["value"])
    predicted = _run_tflite(folder / "model.tflite", mpg_data.feature_matrix(test))
    rmse = float(np.sqrt(np.mean((predicted - mpg_data.targets(test)) ** 2)))

    assert len(test) == training["split"]["test_rows"]
    assert rmse <= TARGET_RMSE
    assert abs(rmse - manifest["metrics"]["test_rmse"]) <= RMSE_AGREEMENT
