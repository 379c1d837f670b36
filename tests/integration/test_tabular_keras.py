"""`python -m train.tabular --keras MODEL`: the user's own trained Keras model, checked against
the declared features, converted and exported without training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelserve.contract import verify_folder
from tests.helpers import latest_version
from train import tabular

pytestmark = pytest.mark.slow


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    return path


def users_model(path: Path, inputs: int, outputs: int) -> Path:
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(outputs, activation="softmax")])
    model.save(path)
    return path


def test_a_model_whose_input_does_not_fit_the_features_is_refused(
        iris_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = users_model(tmp_path / "wrong.keras", 5, 3)
    bucket = tmp_path / "bucket"

    code = tabular.main(["--data", str(iris_csv), "--target", "target", "--keras", str(wrong),
                         "--bucket", str(bucket), "--quiet"])

    error = capsys.readouterr().err
    assert code == tabular.EXIT_INPUT
    assert error.strip() == (
        f"error: nothing exported: --keras {wrong}: the model's input (None, 5) does not fit "
        "the 4 features (sepal length (cm), sepal width (cm), petal length (cm), petal width "
        "(cm)); it must take (None, 4)")
    assert not any(bucket.rglob("*.tflite"))
    assert not (bucket / "iris").exists() or not any((bucket / "iris").iterdir())


def test_a_fitting_model_is_exported_as_it_is(iris_csv: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model = users_model(tmp_path / "mine.keras", 4, 3)

    code = tabular.main(["--data", str(iris_csv), "--target", "target", "--keras", str(model),
                         "--bucket", str(tmp_path / "bucket"), "--quiet"])

    assert code == 0, capsys.readouterr().err
    folder = latest_version(tmp_path / "bucket" / "iris")
    verify_folder(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["training"]["model"]["source"] == "keras file"
    assert manifest["training"]["epochs"] is None
    assert manifest["output"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert (folder / "model.keras").read_bytes() == model.read_bytes()
    assert "loss_curve.png" not in {p.name for p in folder.iterdir()}
    assert manifest["metrics"]["parity_rows"] == len(pd.read_csv(iris_csv))
    assert 0 <= manifest["metrics"]["test_accuracy"] <= 1
    assert np.isfinite(manifest["metrics"]["test_log_loss"])
