"""classify_image in-process against the hostile corpus: the right status, fast, recovers.

The corpus is tests/hostile_cases.py; tests/integration/test_hostile_images.py measures a
real server's memory on the same cases.
"""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.colour_classifier import photo
from tests.hostile_cases import (
    ANSWER_SECONDS,
    AT_LIMIT_CASES,
    CASES,
    GOOD_COLOUR,
    Case,
    check_answer,
)
from tests.inprocess import upload


def send(app: FlaskClient, case: Case, data: bytes) -> TestResponse:
    if case.content_type is not None:
        return app.post("/", data=data, content_type=case.content_type)
    return upload(app, data, case.filename)


def check(app: FlaskClient, case: Case) -> None:
    """Send the case; assert its answer and time, then that a good upload still succeeds."""
    data = case.make()
    started = time.monotonic()
    response = send(app, case, data)
    seconds = time.monotonic() - started
    check_answer(response.status_code, response.headers["Content-Type"], response.get_json(),
                 case)
    assert seconds < ANSWER_SECONDS
    good = upload(app, photo(GOOD_COLOUR))
    assert good.status_code == 200, good.text
    assert good.get_json()["predictions"][0]["label"] == GOOD_COLOUR


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_upload_is_answered_fast(colour_app: FlaskClient, name: str) -> None:
    check(colour_app, CASES[name])


@pytest.mark.parametrize("name", list(AT_LIMIT_CASES))
def test_image_at_the_pixel_limit_is_answered(colour_app: FlaskClient, name: str) -> None:
    check(colour_app, AT_LIMIT_CASES[name])
