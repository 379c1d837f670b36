"""Security properties in-process: CORS, and what error messages echo back."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient

from tests.helpers import LESSON_REQUEST
from tests.inprocess import client, mpg_environ

ALLOWED_ORIGIN = "https://ok.example"
MAX_MESSAGE_CHARS = 200
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
                "Access-Control-Allow-Headers", "Access-Control-Max-Age")


@pytest.fixture(scope="module")
def cors(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """predict_mpg allowing one origin."""
    folder = tmp_path_factory.mktemp("cors")
    return client("predict_mpg", mpg_environ(folder, CORS_ORIGINS=ALLOWED_ORIGIN))


@pytest.fixture(scope="module")
def mpg(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """predict_mpg with the default configuration (no origin allowed)."""
    return client("predict_mpg", mpg_environ(tmp_path_factory.mktemp("mpg")))


def assert_bounded_message(message: str) -> None:
    assert len(message) < MAX_MESSAGE_CHARS
    assert not set(message) & {"\n", "\r", "\u2028", "\u2029", "\x85"}


# --- CORS --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/", LESSON_REQUEST, 200),
    ("POST", "/", {**LESSON_REQUEST, "weight": 50000}, 400),  # browsers must read errors too
    ("GET", "/", None, 200),
    ("POST", "/api/mpg", LESSON_REQUEST, 200),
    ("POST", "/api/mpg", {**LESSON_REQUEST, "weight": 50000}, 400),
])
def test_allowed_origin_gets_cors_headers(cors: FlaskClient, method: str, path: str,
                                          body: dict | None, status: int) -> None:
    response = cors.open(path, method=method, json=body,
                         headers={"Origin": ALLOWED_ORIGIN, "Accept": "application/json"})
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("origin", [
    "https://evil.example",
    "https://ok.example.evil.example",
    "http://ok.example",  # another scheme is another origin
    "https://ok.example:8443",
    "null",  # sandboxed iframes, file:// pages
    "https://ok.example, https://evil.example",
])
def test_other_origins_get_no_cors_headers(cors: FlaskClient, origin: str) -> None:
    response = cors.post("/", json=LESSON_REQUEST, headers={"Origin": origin})
    assert response.status_code == 200  # answered (no browser involved), but not shared
    preflight = cors.options("/", headers={"Origin": origin,
                                           "Access-Control-Request-Method": "POST"})
    for answer in (response, preflight):
        assert not [h for h in CORS_HEADERS if h in answer.headers]


@pytest.mark.parametrize("path", ["/", "/api/mpg"])
def test_preflight_from_allowed_origin_lists_methods_and_headers(cors: FlaskClient,
                                                                 path: str) -> None:
    response = cors.options(path, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-request-id"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "POST" in methods
    if path == "/":
        assert {"GET", "POST"} <= methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"]
               .split(",")}
    assert {"content-type", "x-request-id"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_default_configuration_shares_with_no_origin(mpg: FlaskClient) -> None:
    for response in (
        mpg.post("/", json=LESSON_REQUEST, headers={"Origin": ALLOWED_ORIGIN}),
        mpg.options("/", headers={"Origin": ALLOWED_ORIGIN,
                                  "Access-Control-Request-Method": "POST"}),
    ):
        assert response.status_code == 200
        assert not [h for h in CORS_HEADERS if h in response.headers]


# --- What errors echo --------------------------------------------------------------------------

LONG = "x" * 10_000


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


LESSON_JSON = _json(LESSON_REQUEST)
ECHO_CASES: dict[str, tuple[bytes, dict[str, str], str, int]] = {
    "ten_kilobyte_field_name": (_json({**LESSON_REQUEST, LONG: 1}), {}, "", 400),
    "field_name_with_newlines_and_quotes": (
        _json({**LESSON_REQUEST, 'a\nb"c\u2028d\re': 1}), {}, "", 400),
    "ten_kilobyte_string_value": (_json({**LESSON_REQUEST, "weight": "9" * 10_000}), {}, "",
                                  400),
    "five_thousand_digit_number": (
        LESSON_JSON[:-1] + b', "extra": ' + b"9" * 5000 + b"}", {}, "", 400),
    "ten_kilobyte_batch_key": (_json({"instances": [LESSON_REQUEST], LONG: 1}), {}, "", 400),
    "newline_in_batch_key": (_json({"instances": [LESSON_REQUEST], "a\nb\u2028c": 1}), {}, "",
                             400),
    "ten_kilobyte_field_in_batch_item": (
        _json({"instances": [{**LESSON_REQUEST, LONG: 1}]}), {}, "", 200),
    "long_content_type": (LESSON_JSON, {"Content-Type": "text/" + "y" * 4000}, "", 415),
    "content_type_with_escaped_newline": (
        LESSON_JSON, {"Content-Type": "text/a\\nb" + "y" * 100}, "", 415),
    "ten_kilobyte_path": (LESSON_JSON, {}, "/" + LONG, 404),
}


@pytest.mark.parametrize("case", sorted(ECHO_CASES))
def test_errors_echo_only_a_bounded_escaped_slice(mpg: FlaskClient, case: str) -> None:
    data, headers, path, status = ECHO_CASES[case]
    response = mpg.post(path or "/", data=data,
                        headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status, response.text
    answer = response.get_json()
    problems = answer.get("errors") or [p for item in answer.get("predictions", [])
                                        for p in item.get("errors", [])]
    assert problems
    for problem in problems:
        assert_bounded_message(problem["message"])
        assert problem["field"] is None or len(problem["field"]) < MAX_MESSAGE_CHARS
    assert len(response.data) < 2048
    assert LONG[:100] not in response.text


def test_error_answers_are_bounded_in_size(mpg: FlaskClient) -> None:
    many = json.dumps({f"{i:x}": 1 for i in range(4000)}).encode()  # within MAX_JSON_BYTES
    refused = mpg.post("/", data=many, content_type="application/json")
    assert refused.status_code == 400
    assert len(refused.data) < 4096  # 7 missing + 10 unexpected fields + a summary
    assert mpg.post("/", json=LESSON_REQUEST).status_code == 200
