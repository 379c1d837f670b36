"""The Open Inference Protocol v2 in-process: routes, the binary-data extension, tabular and
image tensors, and every error in the protocol's {"error"} shape."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from modelserve.app import create_app
from tests.colour_classifier import photo
from tests.unit.protocol_apps import FEATURES, LESSON_MPG, mpg_client

LESSON_CAR = [8, 300, 78, 3500, 20, 76, 1]
INFER = "/v2/models/mpg/infer"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return mpg_client(tmp_path_factory.mktemp("cache"), MAX_BATCH_SIZE="8")


def matrix(rows: list, datatype: str = "FP32", name: str = "input") -> dict:
    return {"inputs": [{"name": name, "datatype": datatype, "shape": [len(rows), len(rows[0])],
                        "data": rows}]}


def binary_body(header: dict, *chunks: bytes) -> tuple[bytes, dict[str, str]]:
    """JSON header then raw tensors, as tritonclient sends them."""
    text = json.dumps(header).encode()
    return text + b"".join(chunks), {"Inference-Header-Content-Length": str(len(text))}


def assert_error(response, status: int, words: str) -> None:
    assert response.status_code == status, response.json
    assert set(response.json) == {"id", "error"}
    assert words in response.json["error"], response.json["error"]
    assert response.json["id"] == response.headers["X-Request-Id"]


def assert_still_infers(client: FlaskClient) -> None:
    response = client.post(INFER, json=matrix([LESSON_CAR]))
    assert response.status_code == 200, response.json
    assert response.json["outputs"][0]["data"] == [LESSON_MPG]


def test_live_never_loads_the_model_and_ready_does(tmp_path: Path) -> None:
    client = mpg_client(tmp_path)
    assert client.get("/v2/health/live").json["live"] is True
    assert client.get("/healthz").json["model"] == {"state": "not_loaded"}
    assert client.get("/v2/health/ready").json["ready"] is True
    assert client.get("/healthz").json["model"] == {"state": "loaded"}


def test_an_unloadable_model_is_not_ready_503(tmp_path: Path) -> None:
    env = {"MPG_MODEL_URI": str(tmp_path / "none"), "MODEL_CACHE_DIR": str(tmp_path)}
    client = create_app("predict_mpg", env).test_client()
    assert client.get("/v2/health/live").status_code == 200
    for path in ("/v2/health/ready", "/v2/models/mpg/ready", "/v2/models/mpg"):
        response = client.get(path)
        assert_error(response, 503, "Model unavailable")
        assert int(response.headers["Retry-After"]) >= 1
    assert_error(client.post(INFER, json=matrix([LESSON_CAR])), 503, "Model unavailable")


def test_server_and_model_metadata(client: FlaskClient) -> None:
    server = client.get("/v2").json
    assert server["extensions"] == ["binary_tensor_data"] and server["function"] == "predict_mpg"
    metadata = client.get("/v2/models/mpg").json
    version = metadata["versions"][0]
    assert client.get(f"/v2/models/mpg/versions/{version}").json["inputs"] == metadata["inputs"]
    assert client.get(f"/v2/models/mpg/versions/{version}/ready").json["ready"] is True


def test_infer_answers_the_lesson_car_and_echoes_the_id(client: FlaskClient) -> None:
    response = client.post(INFER, json={"id": "my-request", **matrix([LESSON_CAR])})
    assert response.status_code == 200
    body = response.json
    assert body["id"] == "my-request" and body["model_name"] == "mpg"
    assert body["outputs"] == [{"name": "mpg", "datatype": "FP32", "shape": [1, 1],
                                "data": [LESSON_MPG]}]
    assert response.headers["X-Request-Id"] != "my-request"  # the log's id stays the server's
    without_id = client.post(INFER, json=matrix([LESSON_CAR]))
    assert without_id.json["id"] == without_id.headers["X-Request-Id"]


@pytest.mark.parametrize("request_body", [
    {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 7], "data": LESSON_CAR}]},
    {"inputs": [{"name": "cars", "datatype": "INT64", "shape": [1, 7], "data": [LESSON_CAR]}]},
    {"inputs": [{"name": name, "datatype": "FP32", "shape": [1], "data": [value]}
                for name, value in zip(FEATURES, LESSON_CAR, strict=True)]},
    {"inputs": [{"name": name, "datatype": "INT64", "shape": [1, 1], "data": [[value]]}
                for name, value in reversed(list(zip(FEATURES, LESSON_CAR, strict=True)))]},
    {"inputs": matrix([LESSON_CAR])["inputs"], "outputs": [{"name": "mpg"}],
     "parameters": {"binary_data_output": False}},
])
def test_every_accepted_tabular_form_gives_the_same_mpg(client: FlaskClient,
                                                       request_body: dict) -> None:
    response = client.post(INFER, json=request_body)
    assert response.status_code == 200, response.json
    assert response.json["outputs"][0]["data"] == [LESSON_MPG]


def test_binary_tensor_data_as_tritonclient_sends_it(client: FlaskClient) -> None:
    rows = np.array([LESSON_CAR, [4, 97, 88, 2130, 24.8, 70, 3]], dtype=np.float32)
    header = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 7],
                          "parameters": {"binary_data_size": rows.nbytes}}]}
    body, headers = binary_body(header, rows.tobytes())
    response = client.post(INFER, data=body, headers=headers)  # no Content-Type, as tritonclient
    assert response.status_code == 200, response.json
    # acceleration 24.8 is the range's top: its FP32 value (24.7999992) still fits.
    assert response.json["outputs"][0]["data"][0] == LESSON_MPG
    assert response.json["outputs"][0]["shape"] == [2, 1]


@pytest.mark.parametrize(("body", "headers", "status", "words"), [
    (b'{"inputs": []}', {}, 400, "inputs must be an array of 1 to"),
    (b"[1, 2]", {}, 400, "must be a JSON object"),
    (b'{"inputs": [1]', {}, 400, "Malformed JSON"),
    (json.dumps({**matrix([LESSON_CAR]), "extra": 1}).encode(), {}, 400,
     "Unexpected field: extra."),
    (json.dumps(matrix([LESSON_CAR[:6]])).encode(), {}, 400, "shape must be [N, 7]"),
    (json.dumps(matrix([LESSON_CAR], "INT32")).encode(), {}, 400, "datatype must be FP32"),
    (json.dumps(matrix([LESSON_CAR], "STRING")).encode(), {}, 400, "datatype must be one of"),
    (json.dumps(matrix([[8, 300, 78, 3500, 20.5, 76, 1]], "INT64")).encode(), {}, 400,
     "Row 0: Wrong type: acceleration is INT64 data"),
    (json.dumps(matrix([[8, 300, 78, 50000, 20, 76, 1]])).encode(), {}, 400,
     "Row 0: Out of bounds: weight, has value of: 50000"),
    (json.dumps(matrix([[8, 300, 78, "heavy", 20, 76, 1]])).encode(), {}, 400,
     "Row 0: Wrong type: weight must be a number, got a string."),
    (json.dumps(matrix([LESSON_CAR] * 9)).encode(), {}, 413, "at most 8 instances"),
    (json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7],
                             "data": LESSON_CAR[:5]}]}).encode(), {}, 400, "data has 5"),
    (json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [0, 7],
                             "data": []}]}).encode(), {}, 400, "N must be at least 1"),
    (json.dumps({"inputs": [{"name": "cylinders", "datatype": "FP32", "shape": [1],
                             "data": [8]}]}).encode(), {}, 400, "Missing value: weight."),
    (json.dumps({"inputs": [{"name": "color", "datatype": "FP32", "shape": [1], "data": [1]},
                            *matrix([LESSON_CAR])["inputs"]]}).encode(), {}, 400,
     "Send one [N, 7] tensor"),
    (json.dumps({**matrix([LESSON_CAR]), "outputs": [{"name": "kpl"}]}).encode(), {}, 400,
     "Unknown output: kpl"),
    (json.dumps({**matrix([LESSON_CAR]), "id": 7}).encode(), {}, 400, "id must be a string"),
    (b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7], '
     b'"parameters": {"binary_data_size": 28}}]}', {"Inference-Header-Content-Length": "999"},
     400, "Inference-Header-Content-Length must be"),
    (*binary_body({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7],
                               "parameters": {"binary_data_size": 28}}]}, b"\0" * 20), 400,
     "runs past the end"),
    (*binary_body({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7],
                               "parameters": {"binary_data_size": 20}}]}, b"\0" * 20), 400,
     "take 28 bytes"),
    (*binary_body(matrix([LESSON_CAR]), b"\0" * 8), 400, "belong to no input"),
    (json.dumps(matrix([LESSON_CAR])).encode(), {"Content-Type": "text/plain"}, 415,
     "Content-Type must be"),
    (json.dumps(matrix([LESSON_CAR])).encode(), {"Content-Encoding": "gzip"}, 415,
     "Content-Encoding gzip is not supported"),
    (b"{" + b" " * 70000 + b"}", {}, 413, "larger than the limit"),
])
def test_bad_infer_requests_get_the_protocol_error(client: FlaskClient, body: bytes,
                                                   headers: dict, status: int,
                                                   words: str) -> None:
    assert_error(client.post(INFER, data=body, headers=headers), status, words)
    assert_still_infers(client)


@pytest.mark.parametrize(("method", "path", "status", "words"), [
    ("GET", "/v2/models/cars", 404, "No model named cars; this function serves mpg"),
    ("POST", "/v2/models/cars/infer", 404, "No model named cars"),
    ("GET", "/v2/models/mpg/versions/1", 404, "Model mpg has no version 1"),
    ("GET", "/v2/models/mpg/stats", 404, "No such path"),
    ("GET", "/v2/repository/index", 404, "No such path"),
    ("GET", "/v2/models", 404, "No such path"),
    ("GET", INFER, 405, "Method GET is not allowed here; use POST or OPTIONS."),
    ("DELETE", "/v2/health/live", 405, "use GET or OPTIONS"),
    ("POST", "/v2", 405, "use GET or OPTIONS"),
])
def test_wrong_paths_names_and_methods(client: FlaskClient, method: str, path: str,
                                       status: int, words: str) -> None:
    response = client.open(path, method=method, json=matrix([LESSON_CAR]))
    assert_error(response, status, words)
    if status == 405:
        assert "OPTIONS" in response.headers["Allow"]
    assert_still_infers(client)


def test_head_and_options_work_as_on_the_own_paths(client: FlaskClient) -> None:
    assert client.head("/v2/health/live").status_code == 200
    assert client.options(INFER).status_code == 200


def test_the_own_api_and_its_paths_are_unchanged(client: FlaskClient) -> None:
    record = dict(zip(FEATURES, LESSON_CAR, strict=True))
    assert client.post("/", json=record).json["mpg"] == LESSON_MPG
    assert client.post("/api/mpg", json=record).json["mpg"] == LESSON_MPG
    assert client.get("/healthz").status_code == 200
    paths = client.get("/openapi.json").json["paths"]
    assert {"/", "/api/mpg", "/healthz", "/openapi.json", "/v2", "/v2/health/live",
            "/v2/health/ready", "/v2/models/mpg", "/v2/models/mpg/ready", INFER} <= set(paths)
    # The lesson's path is POST / under another name: records, batches and BigQuery's envelope.
    assert paths["/api/mpg"]["post"]["requestBody"] == paths["/"]["post"]["requestBody"]
    own = paths["/api/mpg"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(own["oneOf"]) == 3


# --- classify_image, on the tests' colour classifier ---------------------------------------
# (tests/integration/test_tritonclient.py checks cat.bmp is an Egyptian cat on ImageNet.)


@pytest.fixture(scope="module")
def image_client(tmp_path_factory: pytest.TempPathFactory, colour_model_root: Path
                 ) -> FlaskClient:
    folder = tmp_path_factory.mktemp("image")
    env = {"IMAGE_MODEL_URI": str(colour_model_root), "MODEL_CACHE_DIR": str(folder / "cache"),
           "MAX_IMAGE_BYTES": "2000000"}
    return create_app("classify_image", env).test_client()


def red() -> bytes:
    return photo("red")


def image_request(data: bytes, **parameters: object) -> tuple[bytes, dict[str, str]]:
    header = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                          "parameters": {"binary_data_size": len(data) + 4}}]}
    if parameters:
        header["parameters"] = parameters
    return binary_body(header, struct.pack("<I", len(data)), data)


def test_a_binary_bytes_tensor_is_classified_as_the_upload_is(image_client: FlaskClient) -> None:
    body, headers = image_request(red(), top_k=3)
    response = image_client.post("/v2/models/image/infer", data=body, headers=headers)
    assert response.status_code == 200, response.json
    outputs = {output["name"]: output for output in response.json["outputs"]}
    upload = image_client.post("/?top_k=3", data=red(), content_type="image/jpeg").json
    assert outputs["label"]["data"] == [p["label"] for p in upload["predictions"]]
    assert outputs["label"]["data"][0] == "red"
    assert outputs["probability"]["data"] == [p["probability"] for p in upload["predictions"]]
    assert outputs["class_id"] == {"name": "class_id", "datatype": "INT64", "shape": [1, 3],
                                   "data": [p["class_id"] for p in upload["predictions"]]}


def test_a_base64_string_in_json_is_an_image_too(image_client: FlaskClient) -> None:
    request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                           "data": [base64.b64encode(red()).decode()]}],
               "outputs": [{"name": "label"}]}
    response = image_client.post("/v2/models/image/infer", json=request)
    assert response.status_code == 200, response.json
    assert [o["name"] for o in response.json["outputs"]] == ["label"]
    assert response.json["outputs"][0]["data"][0] == "red"


@pytest.mark.parametrize(("make", "status", "words"), [
    (lambda: image_request(b"GIF89a\x01\x00"), 400, "cannot be decoded"),
    (lambda: image_request(b"%PDF-1.4 ..."), 415, "Unsupported image format: PDF"),
    (lambda: image_request(b"\0" * 2000001), 413, "larger than the limit of 2000000 bytes"),
    (lambda: image_request(b"BM", top_k=0), 400, "top_k must be a whole number from 1 to 20"),
    (lambda: image_request(b"BM", top_k="3"), 400, "top_k must be"),
    (lambda: (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                      "data": ["not base64!"]}]}).encode(), {}), 400,
     "not valid base64"),
    (lambda: (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                      "data": [42]}]}).encode(), {}), 400, "base64 string"),
    (lambda: (json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1],
                                      "data": [1.0]}]}).encode(), {}), 400,
     "datatype must be BYTES"),
])
def test_bad_images_get_the_protocol_error(image_client: FlaskClient, make, status: int,
                                           words: str) -> None:
    body, headers = make()
    response = image_client.post("/v2/models/image/infer", data=body, headers=headers)
    assert_error(response, status, words)
    body, headers = image_request(red())
    good = image_client.post("/v2/models/image/infer", data=body, headers=headers)
    assert good.json["outputs"][0]["data"][0] == "red"


def document_example(client: FlaskClient, path: str) -> dict:
    operation = client.get("/openapi.json").json["paths"][path]["post"]
    return operation["requestBody"]["content"]["application/json"]["example"]


def test_the_documented_infer_example_is_answered(client: FlaskClient) -> None:
    response = client.post(INFER, json=document_example(client, INFER))
    assert response.status_code == 200, response.json


def test_the_documented_image_example_is_answered(image_client: FlaskClient) -> None:
    path = "/v2/models/image/infer"
    response = image_client.post(path, json=document_example(image_client, path))
    assert response.status_code == 200, response.json
    assert response.json["outputs"][0]["shape"] == [1, 3]
