"""The Open Inference Protocol through a real client: tritonclient[http] against real
functions-framework processes serving predict_mpg and classify_image.

tritonclient sends tensors through the binary-data extension by default (a JSON header, then
raw bytes); the base64 test sends the image in JSON instead (binary_data=False).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.helpers import COMMITTED_BUCKET, FunctionServer, latest_version
from tests.integration.fixtures_image import (
    IMAGENET_SKIP_REASON,
    shared_photo,
    start_image_server,
)

LESSON_CAR = [8, 300, 78, 3500, 20, 76, 1]
LESSON_MPG = 18.68
FEATURES = ("cylinders", "displacement", "horsepower", "weight", "acceleration", "year",
            "origin")
MPG_VERSION = latest_version(COMMITTED_BUCKET / "mpg").name


def client_for(server: FunctionServer) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(server.url.removeprefix("http://"))


# The image half needs ImageNet's own labels (cat.bmp is an Egyptian cat).
requires_imagenet = pytest.mark.skipif(
    not (os.environ.get("IMAGENET_TFLITE") and os.environ.get("SHARED_IMAGES")),
    reason=IMAGENET_SKIP_REASON)


@pytest.fixture(scope="module")
def mpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    folder = tmp_path_factory.mktemp("mpg-oip")
    env = {"MPG_MODEL_URI": str(COMMITTED_BUCKET / "mpg"), "MODEL_CACHE_DIR": str(folder),
           "MAX_BATCH_SIZE": "8"}
    with FunctionServer("predict_mpg", env, folder / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    with start_image_server(tmp_path_factory.mktemp("image-oip")) as server:
        yield server


def car_matrix(rows: list[list[float]], datatype: str = "FP32",
               name: str = "input") -> httpclient.InferInput:
    array = np.array(rows, dtype={"FP32": np.float32, "FP64": np.float64,
                                  "INT64": np.int64, "INT32": np.int32}[datatype])
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def infer_mpg(client: httpclient.InferenceServerClient, *inputs: httpclient.InferInput,
              **kwargs: object) -> np.ndarray:
    return client.infer("mpg", list(inputs), **kwargs).as_numpy("mpg")


def assert_lesson_car_still_works(client: httpclient.InferenceServerClient) -> None:
    assert infer_mpg(client, car_matrix([LESSON_CAR]))[0, 0] == pytest.approx(LESSON_MPG,
                                                                              abs=0.01)


def test_health_and_metadata_of_predict_mpg(mpg: FunctionServer) -> None:
    client = client_for(mpg)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("mpg")
    assert client.is_model_ready("mpg", MPG_VERSION)
    assert not client.is_model_ready("mpg", "19990101T000000Z")
    assert not client.is_model_ready("cars")
    metadata = client.get_model_metadata("mpg")
    assert metadata["name"] == "mpg" and metadata["versions"] == [MPG_VERSION]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 7]}]
    assert metadata["outputs"] == [{"name": "mpg", "datatype": "FP32", "shape": [-1, 1]}]
    assert metadata["parameters"]["features"] == list(FEATURES)
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


def test_lesson_car_as_an_fp32_tensor(mpg: FunctionServer) -> None:
    client = client_for(mpg)
    result = client.infer("mpg", [car_matrix([LESSON_CAR])], request_id="car-1")
    mpg_value = result.as_numpy("mpg")
    assert mpg_value.shape == (1, 1)
    assert mpg_value[0, 0] == pytest.approx(LESSON_MPG, abs=0.01)
    response = result.get_response()
    assert response["id"] == "car-1"
    assert response["model_name"] == "mpg" and response["model_version"] == MPG_VERSION


def test_batches_datatypes_and_one_tensor_per_feature_agree(mpg: FunctionServer) -> None:
    client = client_for(mpg)
    small_car = [4, 97, 88, 2130, 14.5, 70, 3]
    fp32 = infer_mpg(client, car_matrix([LESSON_CAR, small_car]))
    assert fp32.shape == (2, 1) and fp32[1, 0] > fp32[0, 0]
    fp64 = infer_mpg(client, car_matrix([LESSON_CAR, small_car], "FP64"))
    np.testing.assert_allclose(fp64, fp32, atol=0.001)
    whole = infer_mpg(client, car_matrix([[8, 300, 78, 3500, 20, 76, 1]], "INT64"))
    assert whole[0, 0] == pytest.approx(fp32[0, 0], abs=0.001)
    columns = []
    for index, name in enumerate(FEATURES):
        column = np.array([LESSON_CAR[index], small_car[index]], dtype=np.float32)
        tensor = httpclient.InferInput(name, [2], "FP32")
        tensor.set_data_from_numpy(column, binary_data=index % 2 == 0)  # JSON and binary
        columns.append(tensor)
    np.testing.assert_allclose(infer_mpg(client, *columns), fp32, atol=0.001)


@pytest.mark.parametrize(("inputs", "status", "words"), [
    (lambda: [car_matrix([LESSON_CAR[:6]])], "400", "shape must be [N, 7]"),
    (lambda: [car_matrix([LESSON_CAR], "INT32")], "400", "datatype must be FP32, FP64, INT64"),
    (lambda: [car_matrix([[8, 300, 78, 50000, 20, 76, 1]])], "400",
     "Row 0: Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."),
    (lambda: [car_matrix([LESSON_CAR, [8, 300, 78, 3500, 20, 76, 5]])], "400",
     "Row 1: Out of bounds: origin"),
    (lambda: [car_matrix([LESSON_CAR] * 9)], "413", "at most 8 instances"),
])
def test_protocol_errors_name_the_problem(mpg: FunctionServer, inputs, status: str,
                                          words: str) -> None:
    client = client_for(mpg)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("mpg", inputs())
    assert caught.value.status() == status
    assert words in caught.value.message()
    assert_lesson_car_still_works(client)


def test_unknown_model_or_version_is_404(mpg: FunctionServer) -> None:
    client = client_for(mpg)
    for call in (lambda: client.infer("cars", [car_matrix([LESSON_CAR])]),
                 lambda: client.infer("mpg", [car_matrix([LESSON_CAR])], model_version="1"),
                 lambda: client.get_model_metadata("cars")):
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == "404"
        assert "this function serves mpg" in caught.value.message() \
            or "has no version 1" in caught.value.message()
    assert_lesson_car_still_works(client)


def test_one_access_line_per_request_with_the_request_id(mpg: FunctionServer) -> None:
    client = client_for(mpg)
    infer_mpg(client, car_matrix([LESSON_CAR]), headers={"X-Request-Id": "oip-log-1"})
    lines = [json.loads(line) for line in mpg.logs().splitlines()
             if line.startswith("{") and '"oip-log-1"' in line]
    assert [(line["path"], line["status"]) for line in lines] == [("/v2/models/mpg/infer", 200)]


def image_input(data: bytes, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [1], "BYTES")
    payload = data if binary else base64.b64encode(data)
    tensor.set_data_from_numpy(np.array([payload], dtype=np.object_), binary_data=binary)
    return tensor


def top_labels(result: httpclient.InferResult) -> list[str]:
    return [label.decode() if isinstance(label, bytes) else label
            for label in result.as_numpy("label")[0]]


@requires_imagenet
def test_classify_image_health_and_metadata(image: FunctionServer) -> None:
    client = client_for(image)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("image")
    metadata = client.get_model_metadata("image")
    assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [1]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probability", "class_id"]


@requires_imagenet
def test_cat_as_a_bytes_tensor_is_an_egyptian_cat(image: FunctionServer) -> None:
    client = client_for(image)
    result = client.infer("image", [image_input(shared_photo("cat.bmp"))],
                          parameters={"top_k": 3}, request_id="cat-1")
    assert top_labels(result)[0] == "Egyptian cat"
    probabilities = result.as_numpy("probability")
    assert probabilities.shape == (1, 3) and probabilities[0, 0] > 0.5
    assert list(probabilities[0]) == sorted(probabilities[0], reverse=True)
    assert result.as_numpy("class_id").shape == (1, 3)
    assert result.get_response()["id"] == "cat-1"
    as_json = client.infer("image", [image_input(shared_photo("cat.bmp"), binary=False)])
    assert top_labels(as_json)[0] == "Egyptian cat" and len(top_labels(as_json)) == 5


@requires_imagenet
def test_classify_image_protocol_errors(image: FunctionServer) -> None:
    client = client_for(image)
    wrong_type = httpclient.InferInput("image", [1, 3], "FP32")
    wrong_type.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
    two = httpclient.InferInput("image", [2], "BYTES")
    two.set_data_from_numpy(np.array([b"a", b"b"], dtype=np.object_))
    cases = [
        (lambda: client.infer("image", [wrong_type]), "400", "datatype must be BYTES"),
        (lambda: client.infer("image", [two]), "400", "one image per request"),
        (lambda: client.infer("image", [image_input(b"not an image at all")]), "400",
         "not an image"),
        (lambda: client.infer("image", [image_input(shared_photo("cat.bmp"))],
                              parameters={"top_k": 21}), "400", "top_k"),
        (lambda: client.infer("imagenet", [image_input(shared_photo("cat.bmp"))]), "404",
         "this function serves image"),
    ]
    for call, status, words in cases:
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == status, caught.value.message()
        assert words in caught.value.message()
    result = client.infer("image", [image_input(shared_photo("cat.bmp"))])
    assert top_labels(result)[0] == "Egyptian cat"


def test_server_log_has_no_traceback(mpg: FunctionServer) -> None:
    assert "Traceback" not in mpg.logs()
    assert "unhandled error" not in mpg.logs()
