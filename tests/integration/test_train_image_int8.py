"""python -m train.image keras: the int8 export (calibrated on representative images) and
ImageNet weights on an offline machine. The float exports are in test_train_image.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import skip_unless_weights_offline
from tests.keras_exports import (
    IMAGENET_SIZE,
    keras_export,
    manifest_of,
    nothing_published,
    run_train,
    serve,
    write_representative,
)


@pytest.mark.slow
def test_keras_int8_export_records_parity_and_serves(tmp_path: Path) -> None:
    representative = write_representative(tmp_path / "representative")
    model_root, _ = keras_export(tmp_path / "export", "--quantize", "int8",
                                 "--representative", str(representative))
    manifest = manifest_of(model_root)
    metrics = manifest["metrics"]
    assert metrics["parity_samples"] == 4  # the representative images
    assert metrics["parity_top1_agreement"] >= 0.75
    assert metrics["parity_max_prob_diff"] >= 0 and metrics["parity_max_prob_diff_limit"] is None
    assert manifest["input"]["dtype"] == "uint8" and manifest["output"]["dtype"] == "uint8"
    assert manifest["input"]["quantization"]["scale"] > 0
    assert manifest["training"]["representative"]["images"] == 4
    predictions = serve(model_root, tmp_path / "cache").top(Image.new("RGB", (96, 96)), 5)
    assert len(predictions) == 5


@pytest.mark.slow
def test_imagenet_weights_offline_fail_fast_with_a_hint(tmp_path: Path) -> None:
    skip_unless_weights_offline()
    result = run_train("keras", "--weights", "imagenet", *IMAGENET_SIZE,
                       "--bucket", str(tmp_path / "bucket"),
                       env={"KERAS_HOME": str(tmp_path / "keras")})  # no cached weights
    assert result.returncode == 2
    assert "Could not download the ImageNet weights for MobileNetV2 (no network?)" in result.stderr
    assert "python -m train.image import --tflite PATH --labels PATH" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert nothing_published(tmp_path / "bucket" / "image")
