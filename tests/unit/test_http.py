"""Request ids, body limits and message escaping."""

from __future__ import annotations

import io

import flask
import pytest

from modelserve.errors import PayloadTooLarge
from modelserve.http import escape_for_message, read_body, request_id

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


def test_escape_bounds_and_escapes() -> None:
    assert escape_for_message("a\nb") == "a\\nb"
    assert len(escape_for_message("y" * 1000)) == 40
