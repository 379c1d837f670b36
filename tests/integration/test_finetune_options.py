"""`python -m train.image finetune` options on small data: a local weights file (frozen base,
then its top layers) and ImageNet weights on an offline machine.

Apart from test_finetune_digits.py, whose module fixture trains for a minute or more, so that
pytest-xdist can run these beside it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.digits import SIZE, run_finetune, write_digits
from tests.helpers import (
    KERAS_NOISE,
    latest_version,
    run_main_here,
    skip_unless_weights_offline,
)

pytestmark = pytest.mark.slow


@pytest.mark.filterwarnings(KERAS_NOISE)
def test_a_local_weights_file_trains_a_frozen_base_then_its_top_layers(
        tmp_path: Path) -> None:
    import keras

    from train import image

    files, _ = write_digits(tmp_path / "all")
    photos = tmp_path / "photos"
    for path in files:
        if path.parent.name in ("digit_0", "digit_1") and int(path.stem) < 120:
            target = photos / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    weights = tmp_path / "base.weights.h5"
    keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35, include_top=False,
                                   weights=None, pooling="avg").save_weights(weights)

    # In this process, which has imported Keras above; the command line runs below and in
    # test_finetune_digits.py.
    code, stdout, stderr = run_main_here(image.main, [
        "finetune", "--data", str(photos), "--weights", str(weights), "--alpha", "0.35",
        "--size", str(SIZE), "--epochs", "2", "--fine-tune-layers", "10",
        "--fine-tune-epochs", "1", "--quantize", "float",
        "--bucket", str(tmp_path / "bucket"), "--name", "zero_one"])

    assert code == 0, stderr
    assert "Training the new head for 2 epochs" in stdout
    assert "Fine-tuning the top 10 base layers for 1 epochs" in stdout
    manifest = json.loads((latest_version(tmp_path / "bucket" / "zero_one") / "manifest.json")
                          .read_text())
    assert manifest["training"]["weights"]["file"] == "base.weights.h5"
    assert manifest["input"]["dtype"] == "float32"
    assert manifest["metrics"]["epochs_run"] == 3
    assert manifest["metrics"]["parity_top1_agreement"] == 1.0


def test_imagenet_weights_offline_fail_fast_with_a_message(tmp_path: Path) -> None:
    skip_unless_weights_offline()
    photos = tmp_path / "photos"
    for label, value in (("dark", 20), ("light", 230)):
        for index in range(2):
            (photos / label).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (value,) * 3).save(photos / label / f"{index}.png")

    started = time.perf_counter()
    result = run_finetune("--data", str(photos), "--size", str(SIZE), "--alpha", "0.35",
                          "--bucket", str(tmp_path / "bucket"),
                          env={"KERAS_HOME": str(tmp_path / "keras")})  # no cached weights

    assert result.returncode == 2
    assert "Could not download the ImageNet weights for MobileNetV2 (no network?)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "bucket" / "image").exists()
    assert time.perf_counter() - started < 120
