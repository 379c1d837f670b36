"""python -m train.image: import a classifier, export Keras MobileNetV2, serve both.

Nothing here needs ../shared: the import is tried on the tests' colour classifier. The import
of the shared ImageNet model itself is tested in test_train_image_import.py.

The Keras exports run through `train.image.main` in this process (one TensorFlow import for
the module); the command line runs as a subprocess for the import and the offline ImageNet
case.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modelserve.contract import sha256_file
from tests.colour_classifier import LABELS
from tests.helpers import KERAS_NOISE, skip_unless_weights_offline
from tests.keras_exports import (
    IMAGENET_SIZE,
    SIZE,
    SMALL,
    keras_export,
    manifest_of,
    nothing_published,
    run_train,
    serve,
    write_representative,
)
from train import bucket


@pytest.fixture(scope="module")
def peaked_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNetV2 0.35/32 weights file whose answers differ from class to class.

    Untrained weights answer exactly 1/1000 everywhere (activations vanish through the blocks),
    so their parity is trivially perfect. Here BatchNorm statistics come from one batch of
    noise and the classifier is scaled up, so one class clearly wins for each image.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35,
                                           weights=None)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # one training-mode call sets the moving statistics
    noise = np.random.default_rng(0).uniform(-1, 1, (16, SIZE, SIZE, 3)).astype(np.float32)
    model(noise, training=True)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 20.0, bias])
    path = tmp_path_factory.mktemp("weights") / "peaked.weights.h5"
    model.save_weights(path)
    return path


# --- import (no ImageNet: the tests' colour classifier) ------------------------------------

def test_labels_that_do_not_fit_are_refused_and_nothing_is_written(
    colour_model_root: Path, tmp_path: Path
) -> None:
    tflite = colour_model_root.parent.parent / "colours.tflite"  # tests/colour_classifier.py
    labels = tmp_path / "colours.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    short = tmp_path / "short.txt"
    short.write_text(LABELS[0] + "\n")  # 2 labels would fit: class 0 as background
    result = run_train("import", "--tflite", str(tflite), "--labels", str(short),
                       "--bucket", str(tmp_path / "bucket"))
    assert result.returncode == 2
    assert "3 outputs" in result.stderr and "1 labels" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bucket").exists()
    # The same command with the right labels still works.
    assert run_train("import", "--tflite", str(tflite), "--labels", str(labels),
                     "--bucket", str(tmp_path / "bucket")).returncode == 0


# --- keras (TensorFlow: slow) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def float_export(peaked_weights: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, str]:
    """MobileNetV2 0.35/32 from the peaked weights file exported without quantization, once
    for the module (each conversion costs ~12 s of CPU): its model root and the command's
    stdout."""
    return keras_export(tmp_path_factory.mktemp("keras-float"), str(peaked_weights),
                        "--quantize", "none")


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_keras_export_passes_parity_and_serves_probabilities(
    float_export: tuple[Path, str], tmp_path: Path
) -> None:
    model_root, stdout = float_export
    manifest = manifest_of(model_root)
    metrics = manifest["metrics"]
    assert metrics["parity_samples"] == 8
    assert metrics["parity_top1_agreement"] == 1.0
    assert metrics["parity_max_prob_diff"] <= 1e-3
    assert metrics["parity_max_prob_diff_limit"] == 1e-3
    assert manifest["input"]["dtype"] == "float32" and manifest["input"]["quantization"] is None
    assert manifest["input"]["normalization"] == {"mean": 127.5, "std": 127.5}
    assert manifest["output"]["activation"] == "none"
    assert (manifest["output"]["classes"], manifest["output"]["label_offset"]) == (1000, 0)
    assert manifest["training"]["quantize"] == "none"
    assert "parity    top-1 agreement 100%" in stdout
    model = serve(model_root, tmp_path / "cache")
    probabilities = model.probabilities(Image.new("RGB", (200, 120), (200, 40, 90)))
    assert probabilities.shape == (1000,)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-3)
    assert model.top(Image.new("RGB", (50, 50)), 1)[0]["label"].startswith("class_")


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_keras_export_from_a_weights_file_matches_keras_through_the_serving_code(
    peaked_weights: Path, float_export: tuple[Path, str], tmp_path: Path
) -> None:
    import keras

    model_root = float_export[0]
    manifest = manifest_of(model_root)
    assert manifest["training"]["weights"] == {
        "source": "file", "file": peaked_weights.name,
        "sha256": sha256_file(peaked_weights)}
    assert manifest["metrics"]["parity_keras_top1_margin"] > 0.1  # a real top-1, not a tie
    assert manifest["metrics"]["parity_top1_agreement"] == 1.0

    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (4, 4, 3), np.uint8))
    photo = photo.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    reference = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), alpha=0.35,
                                               weights=str(peaked_weights))
    pixels = np.asarray(photo, dtype=np.float32)[np.newaxis]
    expected = reference.predict(
        keras.applications.mobilenet_v2.preprocess_input(pixels), verbose=0)[0]
    answer = serve(model_root, tmp_path / "cache").top(photo, 1)[0]
    assert answer["class_id"] == int(np.argmax(expected))
    assert answer["probability"] == pytest.approx(float(np.max(expected)), abs=1e-3)


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_a_failed_parity_check_publishes_nothing(
    float_export: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from train import image, image_keras

    # The "conversion" of the untrained model hands back the peaked model's .tflite: it cannot
    # answer like the untrained Keras model (1/1000 everywhere).
    peaked = float_export[0]
    wrong = (peaked / bucket.read_latest(peaked) / "model.tflite").read_bytes()
    monkeypatch.setattr(image_keras, "convert", lambda *_args: wrong)
    code = image.main(["keras", "--weights", "none", *SMALL,
                       "--bucket", str(tmp_path / "bucket"), "--quiet"])
    assert code == 1
    assert "parity check failed, nothing exported" in capsys.readouterr().err
    assert nothing_published(tmp_path / "bucket" / "image")


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_NOISE)
def test_keras_int8_export_records_parity_and_serves(tmp_path: Path) -> None:
    representative = write_representative(tmp_path / "representative")
    model_root, _ = keras_export(tmp_path / "export", "none", "--quantize", "int8",
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
