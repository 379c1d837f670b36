"""BigQuery remote functions on predict_mpg, in-process: request bodies as BigQuery's
documentation shows them, answered {"replies": [...]} or {"errorMessage": ...}."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.helpers import LESSON_REQUEST
from tests.unit.protocol_apps import (
    LESSON_MPG,
    bigquery_call,
    bigquery_request,
    mpg_client,
    random_cars,
)

LESSON_CALL = ["8", 300.0, 78.0, 3500.0, 20.0, "76", "1"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return mpg_client(tmp_path_factory.mktemp("cache"), MAX_BATCH_SIZE="500")


def remote(client: FlaskClient, calls: list, **context: str):
    return client.post("/", json=bigquery_request(calls, **context))


def assert_still_answers(client: FlaskClient) -> None:
    response = remote(client, [LESSON_CALL])
    assert response.status_code == 200, response.json
    assert response.json["replies"] == [LESSON_MPG]


def assert_bigquery_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.json
    message = response.json["errorMessage"]
    assert len(message.encode()) < 1024
    for word in words:
        assert word in message
    assert response.json["id"] == response.headers["X-Request-Id"]
    return message


def test_lesson_car_as_a_remote_call(client: FlaskClient) -> None:
    response = remote(client, [LESSON_CALL])
    assert response.status_code == 200
    assert response.json["replies"] == [LESSON_MPG]
    assert response.json["id"] == response.headers["X-Request-Id"]


def test_a_500_row_call_answers_in_order_as_the_own_batch_does(client: FlaskClient) -> None:
    cars = random_cars(500)
    response = remote(client, [bigquery_call(car) for car in cars])
    assert response.status_code == 200, response.json
    replies = response.json["replies"]
    own = client.post("/", json={"instances": cars}).json["predictions"]
    assert replies == [item["mpg"] for item in own]
    assert len(set(replies)) > 400  # really per-row answers


def test_the_same_request_twice_gets_identical_replies(client: FlaskClient) -> None:
    body = bigquery_request([bigquery_call(car) for car in random_cars(50, seed=7)])
    first, second = client.post("/", json=body), client.post("/", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json["replies"] == second.json["replies"]
    assert first.json["id"] != second.json["id"]  # each request its own id


@pytest.mark.parametrize(("call", "words"), [
    (["8", 300, 78, 50000, 20, "76", "1"],
     "Row 1: Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140."),
    (["8", 300, None, 3500, 20, "76", "1"], "Row 1: Missing value: horsepower."),
    (["8", 300, 78, 3500, 20, "76"], "Row 1: Wrong arity: each call takes 7 arguments"),
    ("8, 300", "Row 1: Wrong arity"),
    (["8", 300, 78, "heavy", 20, "76", "1"],
     "Row 1: Wrong type: weight must be a number, got a string."),
    (["3.5", 300, 78, 3500, 20, "76", "1"],
     "Row 1: Wrong type: cylinders must be a whole number, got 3.5."),
    (["8", "NaN", 78, 3500, 20, "76", "1"], "Row 1: Invalid number: displacement"),
    (["8", 300, 78, "-Infinity", 20, "76", "1"], "Row 1: Invalid number: weight"),
    (["8", 300, 78, 3500, 20, "76", "9" * 400], "Row 1: Wrong type: origin"),
    (["8", 300, 78, 3500, 20, True, "1"], "Row 1: Wrong type: year must be a whole number"),
])
def test_a_bad_row_fails_the_request_naming_row_and_field(client: FlaskClient, call: list,
                                                          words: str) -> None:
    response = remote(client, [LESSON_CALL, call, LESSON_CALL])
    assert_bigquery_error(response, 400, words)
    assert response.json["errors"][0]["message"].startswith("Row 1: ")
    assert_still_answers(client)


@pytest.mark.parametrize("call", [
    ["8", "300", "78", "3500", "20", "76", "1"],  # NUMERIC columns arrive as strings
    [8, 300, 78, 3500, 20, 76, 1],  # numbers for INT64 too
    ["8", "300.0", "7.8e1", "3500", "20.", "76", "+1"],
    [8.0, 300, 78, 3500, 20, 76.0, 1.0],  # a whole float for an integer feature
])
def test_numbers_and_numeric_strings_are_read_per_feature(client: FlaskClient,
                                                          call: list) -> None:
    response = remote(client, [call])
    assert response.status_code == 200, response.json
    assert response.json["replies"] == [LESSON_MPG]


def test_null_on_error_replies_null_for_bad_rows_only(client: FlaskClient) -> None:
    calls = [LESSON_CALL, ["8", 300, None, 3500, 20, "76", "1"], ["1"], LESSON_CALL,
             ["8", 300, 78, 50000, 20, "76", "1"]]
    response = remote(client, calls, on_error="null")
    assert response.status_code == 200, response.json
    assert response.json["replies"] == [LESSON_MPG, None, None, LESSON_MPG, None]
    explicit = remote(client, [LESSON_CALL, ["1"]], on_error="error")
    assert_bigquery_error(explicit, 400, "Row 1: Wrong arity")
    assert_still_answers(client)


def test_many_bad_rows_keep_the_message_under_1_kb(client: FlaskClient) -> None:
    bad = ["9", "x", None, 50000, "NaN", "99", "7"]
    message = assert_bigquery_error(remote(client, [bad] * 200), 400, "Row 0: ",
                                    "more problems not listed")
    assert message.count("Row ") < 20
    assert_still_answers(client)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"calls": {"0": LESSON_CALL}}, 400, "calls must be an array"),
    ({"calls": "8,300"}, 400, "calls must be an array"),
    ({"calls": [LESSON_CALL], "userDefinedContext": []}, 400, "userDefinedContext must be"),
    ({"calls": [LESSON_CALL], "userDefinedContext": {"on_error": "skip"}}, 400,
     "on_error must be error or null"),
    ({"calls": [LESSON_CALL], "userDefinedContext": {"key1": "value1"}}, 400,
     "Unexpected field: userDefinedContext.key1"),
    ({"calls": [LESSON_CALL] * 1001}, 413, "at most 1000 calls, got 1001"),
])
def test_a_malformed_envelope_is_a_4xx_with_an_error_message(client: FlaskClient, body: dict,
                                                             status: int, words: str) -> None:
    assert_bigquery_error(client.post("/", json=body), status, words)
    assert_still_answers(client)


def test_no_calls_get_no_replies(client: FlaskClient) -> None:
    response = remote(client, [])
    assert response.status_code == 200 and response.json["replies"] == []


def test_feature_fields_beside_calls_are_the_own_api(client: FlaskClient) -> None:
    response = client.post("/", json={**LESSON_REQUEST, "calls": [LESSON_CALL]})
    assert response.status_code == 400
    assert [e["message"] for e in response.json["errors"]] == ["Unexpected field: calls."]
    assert "errorMessage" not in response.json
    assert client.post("/", json=LESSON_REQUEST).json["mpg"] == LESSON_MPG


def test_the_lesson_path_answers_exactly_like_post_root(client: FlaskClient) -> None:
    request = bigquery_request([LESSON_CALL])
    alias, root = client.post("/api/mpg", json=request), client.post("/", json=request)
    assert alias.status_code == root.status_code == 200
    assert alias.json["replies"] == root.json["replies"]


def test_bodies_beyond_max_json_bytes_are_admitted_only_as_envelopes(tmp_path: Path) -> None:
    client = mpg_client(tmp_path, MAX_JSON_BYTES="2048", MAX_REMOTE_JSON_BYTES="200000")
    calls = [bigquery_call(car) for car in random_cars(500, seed=3)]
    response = remote(client, calls)
    assert response.status_code == 200 and len(response.json["replies"]) == 500
    big_batch = client.post("/", json={"instances": random_cars(40)})
    assert big_batch.status_code == 413
    assert big_batch.json["errors"][0]["message"] == ("Request body is larger than the limit "
                                                      "of 2048 bytes.")
    padded = client.post("/", data=b"{" + b" " * 5000 + b"}",
                         headers={"Content-Type": "application/json"})
    assert padded.status_code == 413
    too_big = remote(client, calls * 3)
    assert too_big.status_code == 413
    assert remote(client, [LESSON_CALL]).json["replies"] == [LESSON_MPG]


def test_an_unavailable_model_is_503_which_bigquery_retries(tmp_path: Path) -> None:
    from modelserve.app import create_app

    env = {"MPG_MODEL_URI": str(tmp_path / "no-model"), "MODEL_CACHE_DIR": str(tmp_path)}
    client = create_app("predict_mpg", env).test_client()
    response = remote(client, [LESSON_CALL])
    assert_bigquery_error(response, 503, "Model unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_wrong_content_type_is_415_not_retried(client: FlaskClient) -> None:
    response = client.post("/", data=b'{"calls": []}', headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert_still_answers(client)
