"""classify_image in-process on the tests' colour classifier: uploads, forms, modes, errors.

The classifier (tests/colour_classifier.py) names a photo's dominant colour, so every answer
here is checked against the right label without ImageNet. Tests that need ImageNet's own
labels are in test_imagenet_answers.py.
"""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from tests.colour_classifier import LABELS, photo
from tests.images_corpus import (
    HEADERS_OF_REFUSED_FORMATS,
    animated_gif,
    encode,
    gif_declaring,
    png_declaring,
    rgba_png,
)
from tests.inprocess import upload

NO_IMAGE = "No posted image. Should be attribute named image."
LESSON_PATHS = ("/", "/api/image")


def picture(colour: str) -> Image.Image:
    return Image.open(io.BytesIO(photo(colour))).convert("RGB")


def top1(response: TestResponse) -> str:
    assert response.status_code == 200, response.text
    return response.get_json()["predictions"][0]["label"]


def assert_good_request_still_works(app: FlaskClient) -> None:
    assert top1(upload(app, photo("red"))) == "red"


@pytest.mark.parametrize("colour", LABELS)
@pytest.mark.parametrize("path", LESSON_PATHS)
def test_photos_get_their_colour_with_ranked_probabilities(colour_app: FlaskClient,
                                                           colour: str, path: str) -> None:
    response = upload(colour_app, photo(colour), filename=f"{colour}.jpg", path=path)
    assert top1(response) == colour
    body = response.get_json()
    assert len(body["predictions"]) == len(LABELS)  # top_k 5 by default, 3 classes
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0.99 <= sum(probabilities) <= 1.01
    assert body["model"]["name"] == "image"
    assert body["id"] == response.headers["X-Request-Id"]


def test_api_image_answers_exactly_as_post_root(colour_app: FlaskClient) -> None:
    root, alias = upload(colour_app, photo("blue")), upload(colour_app, photo("blue"),
                                                            path="/api/image")
    root_body, alias_body = root.get_json(), alias.get_json()
    assert root_body.pop("id") != alias_body.pop("id")
    assert alias_body == root_body
    assert colour_app.get("/api/image").status_code == 405
    assert colour_app.get("/api/image").headers["Allow"] == "POST, OPTIONS"
    assert colour_app.post("/api/mpg", json={}).status_code == 404


def test_large_jpeg_photo_gets_its_colour(colour_app: FlaskClient) -> None:
    assert top1(upload(colour_app, photo("green", (1280, 720)))) == "green"


@pytest.mark.parametrize("path", LESSON_PATHS)
def test_raw_image_body_works_like_multipart(colour_app: FlaskClient, path: str) -> None:
    data = photo("blue", image_format="BMP")
    raw = colour_app.post(path, data=data, content_type="image/bmp")
    multipart = upload(colour_app, data, "blue.bmp")
    assert raw.status_code == 200, raw.text
    assert raw.get_json()["predictions"] == multipart.get_json()["predictions"]


@pytest.mark.parametrize(("top_k", "count"), [(None, 3), ("1", 1), ("2", 2), ("20", 3)])
def test_top_k_sets_the_number_of_predictions(colour_app: FlaskClient, top_k: str | None,
                                              count: int) -> None:
    # The colour classifier has 3 classes: a top_k above that answers every class once.
    query = "" if top_k is None else f"?top_k={top_k}"
    predictions = upload(colour_app, photo("green"), query=query).get_json()["predictions"]
    assert len(predictions) == count
    assert len({p["class_id"] for p in predictions}) == count
    assert predictions[0]["label"] == "green"


@pytest.mark.parametrize("variant", ["jpeg", "png", "rgba_png", "webp", "gif", "bmp"])
def test_same_photo_in_other_forms_gives_same_top1(colour_app: FlaskClient,
                                                   variant: str) -> None:
    image = picture("blue")
    data = {
        "jpeg": lambda: encode(image, "JPEG", quality=95),
        "png": lambda: encode(image, "PNG"),
        "rgba_png": lambda: rgba_png(image),
        "webp": lambda: encode(image, "WEBP", quality=95),
        "gif": lambda: encode(image, "GIF"),
        "bmp": lambda: encode(image, "BMP"),
    }[variant]()
    assert top1(upload(colour_app, data, filename="upload.bin")) == "blue"


@pytest.mark.parametrize("mode", ["L", "LA", "P_transparent", "RGBA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_the_models_rgb_input(colour_app: FlaskClient, mode: str) -> None:
    image = picture("red")
    if mode == "P_transparent":
        converted = image.convert("P", palette=Image.Palette.ADAPTIVE)
        converted.info["transparency"] = 0
        data = encode(converted, "PNG", transparency=0)
    elif mode == "I;16":
        data = encode(sixteen_bit(image.convert("L")), "PNG")
    elif mode == "CMYK":
        data = encode(image.convert("CMYK"), "JPEG", quality=95)
    else:
        data = encode(image.convert(mode), "PNG")
    response = upload(colour_app, data, filename="x.png")
    assert response.status_code == 200, response.text
    if mode in ("RGBA", "CMYK", "P_transparent"):
        assert top1(response) == "red"


def sixteen_bit(grey: Image.Image) -> Image.Image:
    """The 8-bit greyscale image as 16-bit samples (v * 257: the same brightness)."""
    return Image.frombytes("I;16", grey.size, bytes(
        b for v in grey.tobytes() for b in (v * 257).to_bytes(2, "little")))


def test_greyscale_16_bit_matches_8_bit(colour_app: FlaskClient) -> None:
    # Grey has no dominant channel: the answers are near-ties, so they must match exactly.
    grey = picture("green").convert("L")
    eight = upload(colour_app, encode(grey, "PNG")).get_json()["predictions"]
    sixteen = upload(colour_app, encode(sixteen_bit(grey), "PNG")).get_json()["predictions"]
    assert sixteen == eight


def test_animated_gif_uses_the_first_frame(colour_app: FlaskClient) -> None:
    red, blue = picture("red"), picture("blue")
    assert top1(upload(colour_app, animated_gif(red, blue), "a.gif")) == "red"
    assert top1(upload(colour_app, animated_gif(blue, red), "b.gif")) == "blue"


@pytest.mark.parametrize(("case", "status", "code"), [
    ("empty_part", 400, "missing_image"),
    ("wrong_field", 400, "missing_image"),
    ("not_an_image", 400, "not_an_image"),
    ("truncated_jpeg", 400, "invalid_image"),
    ("truncated_png", 400, "invalid_image"),
    ("pdf", 415, "unsupported_format"),
    ("eps", 415, "unsupported_format"),
    ("tiff", 415, "unsupported_format"),
    ("psd", 415, "unsupported_format"),
    ("png_bomb", 413, "too_many_pixels"),
    ("gif_bomb", 413, "too_many_pixels"),
    ("too_many_bytes", 413, "too_large"),
    ("text_body", 415, "unsupported_media_type"),
    ("top_k_zero", 400, "invalid_top_k"),
    ("top_k_21", 400, "invalid_top_k"),
    ("top_k_word", 400, "invalid_top_k"),
])
@pytest.mark.parametrize("path", LESSON_PATHS)
def test_bad_uploads_get_the_right_error(colour_app: FlaskClient, case: str, status: int,
                                         code: str, path: str) -> None:
    jpeg = encode(picture("red"), "JPEG")
    png = encode(picture("red"), "PNG")

    def send(data: bytes, filename: str = "photo.jpg", query: str = "",
             field: str = "image") -> TestResponse:
        return upload(colour_app, data, filename, query, field, path)

    response = {
        "empty_part": lambda: send(b""),
        "wrong_field": lambda: send(jpeg, "a.jpg", field="photo"),
        "not_an_image": lambda: send(b"hello, I am text" * 10, "cat.jpg"),
        "truncated_jpeg": lambda: send(jpeg[: len(jpeg) // 2]),
        "truncated_png": lambda: send(png[: len(png) // 2], "x.png"),
        "png_bomb": lambda: send(png_declaring(30000, 30000), "bomb.png"),
        "gif_bomb": lambda: send(gif_declaring(65535, 65535), "bomb.gif"),
        "too_many_bytes": lambda: send(b"\xff\xd8\xff" + b"0" * 11_000_000),
        "text_body": lambda: colour_app.post(path, data=b"hi", content_type="text/plain"),
        "top_k_zero": lambda: send(jpeg, query="?top_k=0"),
        "top_k_21": lambda: send(jpeg, query="?top_k=21"),
        "top_k_word": lambda: send(jpeg, query="?top_k=five"),
        **{name: (lambda header=header, name=name: send(header, f"x.{name}"))
           for name, header in HEADERS_OF_REFUSED_FORMATS.items()},
    }[case]()
    assert response.status_code == status, response.text
    error = response.get_json()["errors"][0]
    assert error["code"] == code
    if code == "missing_image":
        assert error["message"] == NO_IMAGE
    if code == "unsupported_format":
        assert "JPEG, PNG, GIF, WebP or BMP" in error["message"]
    assert_good_request_still_works(colour_app)


def test_openapi_documents_the_upload(colour_app: FlaskClient) -> None:
    spec = colour_app.get("/openapi.json").get_json()
    post = spec["paths"]["/"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "image/*"}
    assert post["parameters"][0]["name"] == "top_k"
    alias = spec["paths"]["/api/image"]
    assert set(alias) == {"post"}
    assert alias["post"]["requestBody"] == post["requestBody"]
    assert alias["post"]["parameters"] == post["parameters"]


def test_metadata_describes_the_loaded_classifier(colour_app: FlaskClient) -> None:
    upload(colour_app, photo("red"))
    meta = colour_app.get("/", headers={"Accept": "application/json"}).get_json()
    assert meta["function"] == "classify_image" and meta["state"] == "loaded"
    assert meta["model"]["name"] == "image" and len(meta["model"]["sha256"]) == 64
