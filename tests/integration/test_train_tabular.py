"""`python -m train.tabular` on two scikit-learn tables, each served as a new function.

Regression: load_diabetes (442 rows; `sex`, a numeric column, declared a category).
Classification: load_wine (178 rows, three cultivars; `magnesium` binned into low/medium/high
text), written as Parquet. Each is exported by the real command, declared as a function of
its own (tests/declared.py) and served by a real functions-framework process; the answers on
the held-out rows must agree with the `.tflite` run in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from ai_edge_litert.interpreter import Interpreter

from modelserve.contract import verify_folder
from tests.declared import declared_server
from tests.helpers import REPO_ROOT, FunctionServer, latest_version
from tests.integration.test_browser import CHROMIUM, WAIT_MS
from train.tabular_data import split_indexes

if CHROMIUM.is_file():
    from tests.integration.test_browser import browser, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

EXPORT_TIMEOUT_S = 300
HTTP_TIMEOUT_S = 10
VALUE_AGREEMENT = 2e-3  # the function rounds values to 3 decimals
PROBABILITY_AGREEMENT = 2e-6  # ... and probabilities to 6
MIN_WINE_ACCURACY = 0.85
MAX_DIABETES_RMSE = 65.0  # the target's spread is ~77; a linear fit reaches ~54


@dataclass
class Served:
    """An exported table served by its own declared function."""

    frame: pd.DataFrame
    target: str
    version: Path
    manifest: dict[str, Any]
    server: FunctionServer
    seconds: float

    def post(self, body: Any) -> requests.Response:
        return requests.post(self.server.url, json=body, timeout=HTTP_TIMEOUT_S)


def export(data: Path, bucket: Path, name: str, *extra: str) -> float:
    """Run the real command; its wall time in seconds."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "train.tabular", "--data", str(data), "--bucket", str(bucket),
         "--name", name, "--quiet", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False)
    assert completed.returncode == 0, completed.stderr
    return time.perf_counter() - started


def serve(tmp: Path, frame: pd.DataFrame, data: Path, name: str, target: str,
          *extra: str) -> Iterator[Served]:
    bucket = tmp / "bucket"
    seconds = export(data, bucket, name, "--target", target, *extra)
    version = latest_version(bucket / name)
    verify_folder(version)
    manifest = json.loads((version / "manifest.json").read_text())
    with declared_server(tmp / "function", f"predict_{name}", "tabular",
                         bucket / name) as server:
        yield Served(frame, target, version, manifest, server, seconds)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from sklearn.datasets import load_diabetes

    tmp = tmp_path_factory.mktemp("diabetes")
    frame = load_diabetes(as_frame=True, scaled=False).frame
    data = tmp / "diabetes.csv"
    frame.to_csv(data, index=False)
    yield from serve(tmp, frame, data, "diabetes", "target", "--categorical", "sex",
                     "--unit", "disease progression", "--epochs", "150", "--patience", "25")


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from sklearn.datasets import load_wine

    tmp = tmp_path_factory.mktemp("wine")
    bunch = load_wine(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]
    frame["magnesium"] = pd.qcut(frame["magnesium"], 3,
                                 labels=["low", "medium", "high"]).astype(str)
    data = tmp / "wine.parquet"
    frame.to_parquet(data, index=False)
    yield from serve(tmp, frame, data, "wine", "target", "--categorical", "magnesium",
                     "--epochs", "150", "--patience", "20")


def features_of(served: Served) -> list[dict[str, Any]]:
    return served.manifest["input"]["features"]


def record(served: Served, row: pd.Series) -> dict[str, Any]:
    """A request for one data row: numbers as numbers, categories by name."""
    body: dict[str, Any] = {}
    for feature in features_of(served):
        value = row[feature["name"]]
        if feature["type"] == "category":
            body[feature["name"]] = str(int(value)) if isinstance(value, float) else str(value)
        else:
            body[feature["name"]] = float(value)
    return body


def encoded(served: Served, frame: pd.DataFrame) -> np.ndarray:
    """The model input of rows, encoded from the manifest (categories as their codes)."""
    columns = []
    for feature in features_of(served):
        values = frame[feature["name"]]
        if feature["type"] == "category":
            names = [str(int(v)) if isinstance(v, float) else str(v) for v in values]
            columns.append([feature["categories"][n] for n in names])
        else:
            columns.append(values.to_numpy(dtype=np.float64))
    return np.asarray(columns, dtype=np.float32).T


def tflite_outputs(served: Served, x: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_path=str(served.version / "model.tflite"))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for values in x:
        interpreter.set_tensor(source["index"], values.reshape(1, -1))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(sink["index"]).reshape(-1).copy())
    return np.stack(rows)


def held_out(served: Served) -> pd.DataFrame:
    _, test = split_indexes(len(served.frame), served.manifest["training"]["seed"])
    return served.frame.iloc[test].reset_index(drop=True)


def test_regression_answers_like_the_tflite_on_every_held_out_row(diabetes: Served) -> None:
    test = held_out(diabetes)
    expected = tflite_outputs(diabetes, encoded(diabetes, test)).reshape(-1)
    body = {"instances": [record(diabetes, row) for _, row in test.iterrows()]}

    answer = diabetes.post(body)

    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    served = np.array([item["target"] for item in predictions])
    assert np.max(np.abs(served - expected)) <= VALUE_AGREEMENT
    rmse = float(np.sqrt(np.mean((served - test["target"].to_numpy()) ** 2)))
    assert rmse <= MAX_DIABETES_RMSE
    assert abs(rmse - diabetes.manifest["metrics"]["test_rmse"]) <= 0.01
    assert diabetes.manifest["metrics"]["parity_rows"] == len(diabetes.frame)


def test_regression_answer_is_named_by_the_manifest(diabetes: Served) -> None:
    row = record(diabetes, held_out(diabetes).iloc[0])

    answer = diabetes.post(row)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id", "target", "model"}
    assert body["model"] == {"name": "diabetes", "version": diabetes.version.name}
    assert diabetes.manifest["output"] == {"name": "target", "type": "number",
                                           "unit": "disease progression"}


def test_a_category_is_accepted_by_name_or_by_code(diabetes: Served) -> None:
    (sex,) = [f for f in features_of(diabetes) if f["name"] == "sex"]
    assert sex["categories"] == {"1": 0, "2": 1}  # the numeric column's values, coded 0, 1
    row = record(diabetes, held_out(diabetes).iloc[0])

    by_name = diabetes.post({**row, "sex": "2"}).json()
    by_code = diabetes.post({**row, "sex": 1}).json()
    other = diabetes.post({**row, "sex": "1"}).json()

    assert by_name["target"] == by_code["target"] != other["target"]


def test_validation_comes_from_the_datas_own_ranges(diabetes: Served) -> None:
    frame = diabetes.frame
    low, high = frame["bmi"].min(), frame["bmi"].max()
    row = record(diabetes, held_out(diabetes).iloc[0])
    without_bp = {key: value for key, value in row.items() if key != "bp"}

    answer = diabetes.post({**without_bp, "bmi": 100, "sex": "3", "color": "red"})

    assert answer.status_code == 400
    messages = [error["message"] for error in answer.json()["errors"]]
    assert messages == [  # in the model's feature order, then the unexpected fields
        "Out of bounds: sex, has value of: 3, but should be one of 1 (0), 2 (1).",
        f"Out of bounds: bmi, has value of: 100, but should be between {low:g} and {high:g}.",
        "Missing value: bp.",
        "Unexpected field: color.",
    ]
    assert diabetes.post(row).status_code == 200  # a good request still works


def test_classification_answer_has_the_label_and_every_probability(wine: Served) -> None:
    labels = wine.manifest["output"]["labels"]
    assert labels == ["class_0", "class_1", "class_2"]
    assert wine.manifest["task"] == "classification"
    row = record(wine, held_out(wine).iloc[0])

    answer = wine.post(row)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"id", "label", "probabilities", "model"}
    assert list(body["probabilities"]) == labels
    assert abs(sum(body["probabilities"].values()) - 1) <= 1e-4
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)


def test_classification_agrees_with_the_tflite_on_every_held_out_row(wine: Served) -> None:
    test = held_out(wine)
    labels = wine.manifest["output"]["labels"]
    expected = tflite_outputs(wine, encoded(wine, test))

    answer = wine.post({"instances": [record(wine, row) for _, row in test.iterrows()]})

    assert answer.status_code == 200, answer.text
    items = answer.json()["predictions"]
    served = np.array([[item["probabilities"][label] for label in labels] for item in items])
    assert np.max(np.abs(served - expected)) <= PROBABILITY_AGREEMENT
    assert [item["label"] for item in items] == [labels[i] for i in expected.argmax(axis=1)]
    accuracy = float(np.mean([item["label"] == actual
                              for item, actual in zip(items, test["target"], strict=True)]))
    assert accuracy >= MIN_WINE_ACCURACY
    assert abs(accuracy - wine.manifest["metrics"]["test_accuracy"]) <= 1e-6


def test_classification_validation_and_documents(wine: Served) -> None:
    row = record(wine, held_out(wine).iloc[0])

    bad = wine.post({**row, "magnesium": "huge", "hue": "dark"})
    openapi = requests.get(f"{wine.server.url}/openapi.json", timeout=HTTP_TIMEOUT_S).json()
    metadata = requests.get(wine.server.url, timeout=HTTP_TIMEOUT_S).json()

    assert bad.status_code == 400
    assert [e["message"] for e in bad.json()["errors"]] == [
        "Out of bounds: magnesium, has value of: huge, but should be one of high (0), low (1), "
        "medium (2).",
        "Wrong type: hue must be a number, got a string.",
    ]
    schema = openapi["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]
    record_schema = schema["schema"]["oneOf"][0]
    assert record_schema["properties"]["magnesium"]["oneOf"][0]["enum"] == [
        "high", "low", "medium"]
    success = openapi["paths"]["/"]["post"]["responses"]["200"]["content"]["application/json"]
    assert success["schema"]["oneOf"][0]["properties"]["label"]["enum"] == [
        "class_0", "class_1", "class_2"]
    assert metadata["output"]["labels"] == ["class_0", "class_1", "class_2"]
    assert wine.post(schema["example"]).status_code == 200
    assert wine.post(row).status_code == 200


def test_exports_write_their_report(diabetes: Served, wine: Served) -> None:
    assert {"loss_curve.png", "predicted_vs_actual.png", "metrics.json", "model.keras"} <= {
        path.name for path in diabetes.version.iterdir()}
    assert {"loss_curve.png", "confusion_matrix.png"} <= {
        path.name for path in wine.version.iterdir()}
    print(f"\ndiabetes export {diabetes.seconds:.1f} s, RMSE "
          f"{diabetes.manifest['metrics']['test_rmse']}, parity "
          f"{diabetes.manifest['metrics']['parity_max_abs_diff']:.2g}; wine export "
          f"{wine.seconds:.1f} s, accuracy {wine.manifest['metrics']['test_accuracy']}, "
          f"log loss {wine.manifest['metrics']['test_log_loss']}, parity "
          f"{wine.manifest['metrics']['parity_max_abs_diff']:.2g}")


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="no Chromium installed")
def test_demo_page_shows_the_users_features_and_the_class(wine: Served, page: Any) -> None:
    from playwright.sync_api import expect

    row = record(wine, held_out(wine).iloc[0])
    page.goto(wine.server.url)
    expect(page.locator("#form")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#fields input, #fields select")).to_have_count(13)
    expect(page.locator("#title")).to_have_text("predict_wine (declared by a test)")
    expect(page.locator("#f-magnesium option")).to_have_text(["Choose…", "high", "low",
                                                              "medium"])
    for name, value in row.items():
        if name == "magnesium":
            page.select_option("#f-magnesium", value)
        else:
            page.fill(f'[id="f-{name}"]', str(value))  # names may hold "/" (od280/od315...)
    page.click("#predict")

    expected = wine.post(row).json()
    expect(page.locator("#result .big")).to_have_text(f"Predicted: {expected['label']}",
                                                      timeout=WAIT_MS)
    expect(page.locator("#result .bars li")).to_have_count(3)
    page.fill("#f-hue", "99")
    page.click("#predict")
    expect(page.locator("#e-hue")).to_contain_text("Out of bounds: hue, has value of: 99",
                                                   timeout=WAIT_MS)
    page.fill("#f-hue", str(row["hue"]))  # the good request still works
    page.click("#predict")
    expect(page.locator("#result .big")).to_have_text(f"Predicted: {expected['label']}",
                                                      timeout=WAIT_MS)
