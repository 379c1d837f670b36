"""Request ids, body limits and message escaping."""

from __future__ import annotations

import io

import flask
import pytest

from modelserve.bodies import read_body, require_content_type
from modelserve.errors import PayloadTooLarge, UnsupportedMediaType
from modelserve.http import escape_for_message, request_id

APP = flask.Flask(__name__)


def make_request(headers: dict[str, str] | None = None, body: bytes = b"") -> flask.Request:
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body))}
    with APP.test_request_context("/", headers=headers or {}, environ_overrides=environ):
        return flask.request._get_current_object()


def test_valid_request_id_is_kept() -> None:
    assert request_id(make_request({"X-Request-Id": "abc-123_x.y:z"})) == "abc-123_x.y:z"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "tab\tchar", '{"json":1}', "é"])
def test_unsafe_request_id_is_replaced(bad: str) -> None:
    rid = request_id(make_request({"X-Request-Id": bad, "Function-Execution-Id": "exec42"}))
    assert rid == "exec42"


def test_new_uuid_when_no_id_given() -> None:
    assert len(request_id(make_request())) == 36


def test_body_within_limit_is_read() -> None:
    assert read_body(make_request(body=b"x" * 100), limit=100, timeout=5) == b"x" * 100


def test_declared_oversized_body_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge, match="limit of 10 bytes"):
        read_body(make_request(body=b"x" * 11), limit=10, timeout=5)


@pytest.mark.parametrize(("header", "media_type"), [
    ("application/json", "application/json"),
    ("Application/JSON; charset=UTF-8", "application/json"),
    ("  application/json ;charset=utf-8", "application/json"),
])
def test_media_type_is_read_without_parameters_or_case(header: str, media_type: str) -> None:
    request = make_request({"Content-Type": header})
    assert require_content_type(request, ("application/json",), "application/json") == media_type
    assert media_type == request.mimetype  # what werkzeug itself makes of the header


@pytest.mark.parametrize(("header", "named"), [
    (None, "got none"), ("text/plain; charset=utf-8", "got text/plain"), (";", "got none")])
def test_other_media_types_are_refused_naming_what_came(header: str | None, named: str) -> None:
    request = make_request({"Content-Type": header} if header is not None else {})
    with pytest.raises(UnsupportedMediaType, match=named):
        require_content_type(request, ("application/json",), "application/json")


def test_escape_bounds_and_escapes() -> None:
    assert escape_for_message("a\nb") == "a\\nb"
    assert len(escape_for_message("y" * 1000)) == 40
