"""Property tests of both envelopes, in-process: any JSON gives 200 or a well-formed 4xx,
never a 5xx; valid rows answer exactly as the own API does."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.protocol_apps import FEATURES, bigquery_call, mpg_client, random_cars
from tests.unit.test_validation_properties import field_values, json_values, valid_records

INFER = "/v2/models/mpg/infer"
DATATYPES = ["FP32", "FP64", "INT64", "INT32", "BYTES", "BOOL", "FP16", "UINT8", "nope"]
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return mpg_client(tmp_path_factory.mktemp("cache"), MAX_BATCH_SIZE="16",
                      MAX_REMOTE_ROWS="40")


# BigQuery arguments: anything JSON, plus the strings BigQuery writes for numbers.
arguments = field_values | st.sampled_from(["8", "3.5", "NaN", "Infinity", "-Infinity", "",
                                            "1e400", "-0", "+7", "0x10", " 8", "1_000"]) \
    | st.integers(-10**6, 10**6).map(str)
calls = st.lists(st.lists(arguments, min_size=5, max_size=8) | json_values, max_size=45)
contexts = st.none() | st.fixed_dictionaries({}, optional={
    "on_error": st.sampled_from(["error", "null", "skip"]) | json_values}) | json_values
envelopes = st.builds(
    lambda c, ctx, extra: {"calls": c, **({"userDefinedContext": ctx} if ctx is not None
                                          else {}), **extra},
    calls, contexts,
    st.dictionaries(st.sampled_from(["requestId", "caller", "sessionUser", "x"]), json_values,
                    max_size=3))


def assert_well_formed_error(response, *, bigquery: bool) -> None:
    assert 400 <= response.status_code < 500, response.json
    assert response.status_code != 429
    body = response.json
    assert body["id"] == response.headers["X-Request-Id"]
    assert body["errors"] and all(set(e) == {"field", "code", "message"} for e in body["errors"])
    if bigquery:
        assert body["errorMessage"] and len(body["errorMessage"].encode()) < 1024


@PROPERTY_SETTINGS
@given(envelopes)
def test_any_envelope_gives_replies_for_every_call_or_a_4xx(client: FlaskClient,
                                                            envelope: dict) -> None:
    response = client.post("/", json=envelope)
    if response.status_code == 200:
        replies = response.json["replies"]
        assert len(replies) == len(envelope["calls"])
        assert all(r is None or isinstance(r, float) for r in replies)
        if None in replies:
            assert envelope["userDefinedContext"]["on_error"] == "null"
    else:
        assert_well_formed_error(response, bigquery=True)


@PROPERTY_SETTINGS
@given(json_values)
def test_any_json_on_post_root_gives_200_or_a_well_formed_4xx(client: FlaskClient,
                                                              value: object) -> None:
    response = client.post("/", json=value)
    if response.status_code != 200:
        bigquery = isinstance(value, dict) and "calls" in value
        assert_well_formed_error(response, bigquery=bigquery)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(valid_records, min_size=1, max_size=16))
def test_valid_rows_reply_exactly_as_the_own_batch(client: FlaskClient, cars: list) -> None:
    replies = client.post("/", json={"calls": [bigquery_call(car) for car in cars]})
    own = client.post("/", json={"instances": cars})
    assert replies.status_code == own.status_code == 200, replies.json
    assert replies.json["replies"] == [item["mpg"] for item in own.json["predictions"]]
    infer = client.post(INFER, json={"inputs": [
        {"name": "input", "datatype": "FP64", "shape": [len(cars), len(FEATURES)],
         "data": [[car[name] for name in FEATURES] for car in cars]}]})
    assert infer.status_code == 200, infer.json
    assert infer.json["outputs"][0]["data"] == replies.json["replies"]


shapes = st.lists(st.integers(-1, 9), min_size=0, max_size=5) | json_values
tensors = st.fixed_dictionaries(
    {"name": st.sampled_from(["input", *FEATURES, "x", ""]) | json_values,
     "datatype": st.sampled_from(DATATYPES) | json_values,
     "shape": shapes},
    optional={"data": st.lists(field_values | st.lists(field_values, max_size=8), max_size=20)
              | json_values,
              "parameters": st.fixed_dictionaries({}, optional={
                  "binary_data_size": st.integers(-1, 64) | json_values}) | json_values,
              "extra": json_values})
infer_requests = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=8) | json_values},
    optional={"id": st.text(max_size=10) | json_values, "parameters": json_values,
              "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=5)}),
                                  max_size=2) | json_values})


@PROPERTY_SETTINGS
@given(infer_requests | json_values)
def test_any_infer_request_gives_outputs_or_the_protocol_error(client: FlaskClient,
                                                               request_body: object) -> None:
    response = client.post(INFER, json=request_body)
    body = response.json
    if response.status_code == 200:
        output = body["outputs"][0]
        assert output["shape"] == [len(output["data"]), 1]
    else:
        assert 400 <= response.status_code < 500, body
        assert set(body) == {"id", "error"} and body["error"]


@PROPERTY_SETTINGS
@given(st.binary(max_size=300),
       st.none() | st.integers(-2, 400).map(str)
       | st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=4))
def test_any_bytes_and_header_length_never_escape_as_a_5xx(client: FlaskClient, data: bytes,
                                                           header: str | None) -> None:
    prefix = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7],
                                     "parameters": {"binary_data_size": 28}}]}).encode()
    for body in (data, prefix + data):
        headers = {} if header is None else {"Inference-Header-Content-Length": header}
        response = client.post(INFER, data=body, headers=headers)
        assert response.status_code < 500, response.json
        assert response.status_code == 200 or set(response.json) == {"id", "error"}


def test_a_good_request_still_succeeds_after_the_fuzzing(client: FlaskClient) -> None:
    cars = random_cars(3)
    response = client.post("/", json={"calls": [bigquery_call(car) for car in cars]})
    assert response.status_code == 200 and len(response.json["replies"]) == 3
