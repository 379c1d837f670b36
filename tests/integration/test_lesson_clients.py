"""The lesson's two client calls, in the lesson's form, against real functions.

The lesson posts a car as JSON to /api/mpg and a photo as a multipart form (field `image`) to
/api/image; both paths answer exactly as POST / does. The image function runs the tests'
colour classifier, so the answer is checked without ImageNet.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.colour_classifier import photo
from tests.helpers import LESSON_REQUEST, FunctionServer

TIMEOUT = 20


@pytest.fixture(scope="module")
def urls(mpg_server: FunctionServer, colour_image_server: FunctionServer) -> Iterator[dict]:
    yield {"mpg": mpg_server.url, "image": colour_image_server.url}


def without_id(response: requests.Response) -> dict:
    body = response.json()
    body.pop("id")
    return body


def test_the_lessons_mpg_call(urls: dict) -> None:
    url = urls["mpg"]
    response = requests.post(url + "/api/mpg", json=LESSON_REQUEST)
    assert response.status_code == 200
    assert 15 <= response.json()["mpg"] <= 30  # the lesson's model said 23
    assert without_id(response) == without_id(requests.post(url, json=LESSON_REQUEST,
                                                            timeout=TIMEOUT))


def test_the_lessons_image_call(urls: dict) -> None:
    url = urls["image"]
    files = {"image": ("green.jpg", photo("green"), "image/jpeg")}
    response = requests.post(url + "/api/image", files=files)
    assert response.status_code == 200
    assert response.json()["predictions"][0]["label"] == "green"
    assert without_id(response) == without_id(requests.post(url, files=files, timeout=TIMEOUT))


def test_the_lessons_paths_give_the_same_errors(urls: dict) -> None:
    bad_car = requests.post(urls["mpg"] + "/api/mpg", json={**LESSON_REQUEST, "weight": 50000},
                            timeout=TIMEOUT)
    assert bad_car.status_code == 400
    assert bad_car.json()["errors"][0]["message"] == (
        "Out of bounds: weight, has value of: 50000, but should be between 1613 and 5140.")
    no_image = requests.post(urls["image"] + "/api/image",
                             files={"photo": ("a.jpg", photo("red"))}, timeout=TIMEOUT)
    assert no_image.status_code == 400
    assert no_image.json()["errors"][0]["message"] == (
        "No posted image. Should be attribute named image.")
    for name, path in (("mpg", "/api/mpg"), ("image", "/api/image")):
        assert requests.get(urls[name] + path, timeout=TIMEOUT).status_code == 405
