"""predict_mpg in-process: the lesson's answers and messages, errors, batches, ids, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.helpers import LESSON_REQUEST
from tests.inprocess import client, mpg_environ

LESSON_PATHS = ("/", "/api/mpg")


@pytest.fixture(scope="module")
def mpg(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """One predict_mpg app on the committed model, shared by this module's tests."""
    return client("predict_mpg", mpg_environ(tmp_path_factory.mktemp("mpg")))


def post(app: FlaskClient, body: object, path: str = "/", **kwargs: object) -> TestResponse:
    return app.post(path, json=body, **kwargs)


def assert_good_request_still_works(app: FlaskClient) -> None:
    response = post(app, LESSON_REQUEST)
    assert response.status_code == 200, response.text
    assert isinstance(response.get_json()["mpg"], float)


def test_lesson_request_gives_a_plausible_mpg(mpg: FlaskClient) -> None:
    response = post(mpg, LESSON_REQUEST)
    assert response.status_code == 200
    body = response.get_json()
    assert 15 <= body["mpg"] <= 30  # the lesson's model said 23
    assert body["model"]["name"] == "mpg"
    assert body["id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(("body", "message"), [
    ({k: v for k, v in LESSON_REQUEST.items() if k != "weight"}, "Missing value: weight."),
    ({**LESSON_REQUEST, "color": "red"}, "Unexpected field: color."),
    ({**LESSON_REQUEST, "weight": 50000},
     "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."),
])
@pytest.mark.parametrize("path", LESSON_PATHS)
def test_lesson_bad_requests_give_lesson_messages(mpg: FlaskClient, body: dict, message: str,
                                                  path: str) -> None:
    response = post(mpg, body, path)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert [e["message"] for e in response.get_json()["errors"]] == [message]
    assert_good_request_still_works(mpg)


@pytest.mark.parametrize(("method", "kwargs", "status", "code"), [
    ("POST", {"data": b'{"cylinders": 8,', "content_type": "application/json"},
     400, "invalid_json"),
    ("POST", {"data": b"[1, 2]", "content_type": "application/json"}, 400, "not_object"),
    ("POST", {"data": b'{"weight": 1, "weight": 2}', "content_type": "application/json"},
     400, "duplicate_field"),
    ("POST", {"data": json.dumps(LESSON_REQUEST), "content_type": "text/plain"},
     415, "unsupported_media_type"),
    ("POST", {"data": json.dumps(LESSON_REQUEST)}, 415, "unsupported_media_type"),
    ("POST", {"data": b"{" + b" " * 70000 + b"}", "content_type": "application/json"},
     413, "too_large"),
    ("PUT", {"json": LESSON_REQUEST}, 405, "method_not_allowed"),
    ("DELETE", {}, 405, "method_not_allowed"),
    ("POST", {"json": {"instances": [LESSON_REQUEST] * 9}}, 413, "too_many_instances"),
    ("POST", {"json": {"instances": []}}, 400, "wrong_type"),
    ("GET", {"url_path": "/nothing-here"}, 404, "not_found"),
    ("GET", {"url_path": "/favicon.ico"}, 404, "not_found"),
    ("GET", {"url_path": "/api/mpg"}, 405, "method_not_allowed"),
    ("PUT", {"url_path": "/api/mpg", "json": LESSON_REQUEST}, 405, "method_not_allowed"),
    ("POST", {"url_path": "/api/mpg", "data": b"[1, 2]", "content_type": "application/json"},
     400, "not_object"),
    ("POST", {"url_path": "/api/image", "json": LESSON_REQUEST}, 404, "not_found"),
    ("POST", {"url_path": "/api/mpg/", "json": LESSON_REQUEST}, 404, "not_found"),
])
def test_bad_requests_get_json_errors(mpg: FlaskClient, method: str, kwargs: dict,
                                      status: int, code: str) -> None:
    kwargs = dict(kwargs)
    path = kwargs.pop("url_path", "/")
    response = mpg.open(path, method=method, **kwargs)
    assert response.status_code == status
    body = response.get_json()
    assert body["id"] == response.headers["X-Request-Id"]
    assert body["errors"][0]["code"] == code
    assert "Traceback" not in response.text
    assert_good_request_still_works(mpg)


def test_method_not_allowed_says_what_is(mpg: FlaskClient) -> None:
    assert mpg.put("/").headers["Allow"] == "GET, POST, OPTIONS"
    assert mpg.get("/api/mpg").headers["Allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("path", LESSON_PATHS)
def test_batch_answers_each_item(mpg: FlaskClient, path: str) -> None:
    single = post(mpg, LESSON_REQUEST).get_json()["mpg"]
    response = post(mpg, {"instances": [LESSON_REQUEST, {**LESSON_REQUEST, "origin": 7}]}, path)
    assert response.status_code == 200
    first, second = response.get_json()["predictions"]
    assert first == {"mpg": single}
    assert second["errors"][0]["field"] == "origin"


def test_api_mpg_answers_exactly_as_post_root(mpg: FlaskClient) -> None:
    records = [LESSON_REQUEST, {**LESSON_REQUEST, "cylinders": 4, "weight": 2200, "origin": 3}]
    for record in records:
        root, alias = post(mpg, record), post(mpg, record, "/api/mpg")
        assert alias.status_code == root.status_code == 200
        root_body, alias_body = root.get_json(), alias.get_json()
        assert root_body.pop("id") != alias_body.pop("id")
        assert alias_body == root_body
        assert alias.headers["Content-Type"] == "application/json"


def test_request_id_is_echoed_when_valid_and_replaced_when_not(mpg: FlaskClient) -> None:
    kept = post(mpg, LESSON_REQUEST, headers={"X-Request-Id": "trace-me-42"})
    assert kept.get_json()["id"] == kept.headers["X-Request-Id"] == "trace-me-42"
    forged = post(mpg, LESSON_REQUEST, headers={"X-Request-Id": "x" * 500})
    assert forged.get_json()["id"] != "x" * 500


def test_get_endpoints(mpg: FlaskClient) -> None:
    health = mpg.get("/healthz").get_json()
    assert health["status"] == "ok"
    meta = mpg.get("/").get_json()
    assert meta["state"] == "loaded"
    assert len(meta["model"]["sha256"]) == 64
    assert [f["name"] for f in meta["input"]["features"]] == list(LESSON_REQUEST)
    answer = mpg.get("/openapi.json")
    spec = answer.get_json()
    assert spec["openapi"] == "3.1.0"
    assert "id" not in spec and answer.headers["X-Request-Id"]  # a valid OpenAPI root
    record = spec["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]
    weight = record["schema"]["oneOf"][0]["properties"]["weight"]
    assert (weight["minimum"], weight["maximum"]) == (1613, 5140)


def test_openapi_lists_the_lesson_path_as_post_root(mpg: FlaskClient) -> None:
    paths = mpg.get("/openapi.json").get_json()["paths"]
    assert set(paths["/api/mpg"]) == {"post"}
    assert paths["/api/mpg"]["post"]["requestBody"] == paths["/"]["post"]["requestBody"]
    assert paths["/api/mpg"]["post"]["responses"].keys() == paths["/"]["post"]["responses"].keys()


def test_a_second_app_is_independent_of_the_first(mpg: FlaskClient, tmp_path: Path) -> None:
    small = client("predict_mpg", mpg_environ(tmp_path, MAX_BATCH_SIZE="2"))
    assert post(small, {"instances": [LESSON_REQUEST] * 3}).status_code == 413
    assert post(mpg, {"instances": [LESSON_REQUEST] * 3}).status_code == 200
    assert post(small, LESSON_REQUEST).get_json()["mpg"] == post(mpg, LESSON_REQUEST).get_json()[
        "mpg"]
