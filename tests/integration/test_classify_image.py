"""classify_image through a real functions-framework process, on the tests' colour classifier.

Only what needs a real process is here: its threads under parallel uploads, and its resident
memory after bombs. Uploads, forms, modes and errors are tested in-process in
tests/unit/test_endpoint_image.py (and ImageNet's own labels in test_imagenet_answers.py).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.colour_classifier import LABELS, photo
from tests.helpers import FunctionServer, process_tree_rss_mb
from tests.images_corpus import gif_declaring, png_declaring

TIMEOUT = 20
BOMB_RSS_BUDGET_MB = 250
FORMATS = ("JPEG", "PNG", "BMP", "WEBP")


def upload(server: FunctionServer, data: bytes, filename: str = "photo.jpg",
           query: str = "") -> requests.Response:
    """The lesson's Python client: a multipart form with a field named image."""
    return requests.post(server.url + query, files={"image": (filename, data)}, timeout=TIMEOUT)


def top1(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["label"]


def assert_good_request_still_works(server: FunctionServer) -> None:
    assert top1(upload(server, photo("red"))) == "red"


def test_memory_stays_bounded_on_bombs(colour_image_server: FunctionServer) -> None:
    for _ in range(3):
        assert upload(colour_image_server, png_declaring(30000, 30000), "b.png"
                      ).status_code == 413
        assert upload(colour_image_server, gif_declaring(65535, 65535), "b.gif"
                      ).status_code == 413
    assert process_tree_rss_mb(colour_image_server.process.pid) < BOMB_RSS_BUDGET_MB
    assert_good_request_still_works(colour_image_server)


def test_thirty_two_parallel_uploads_give_the_serial_answers(
        colour_image_server: FunctionServer) -> None:
    photos = [(colour, photo(colour, (320 + 40 * i, 240), image_format))
              for i, image_format in enumerate(FORMATS) for colour in LABELS]
    photos = (photos * 3)[:32]
    serial = [upload(colour_image_server, data).json()["predictions"] for _, data in photos]
    assert [answer[0]["label"] for answer in serial] == [colour for colour, _ in photos]
    with ThreadPoolExecutor(max_workers=32) as pool:
        parallel = list(pool.map(
            lambda item: upload(colour_image_server, item[1]).json()["predictions"], photos))
    assert parallel == serial
