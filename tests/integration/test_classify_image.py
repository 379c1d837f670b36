"""classify_image through a real functions-framework process, with the shared ImageNet model."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from tests.helpers import FunctionServer, process_tree_rss_mb
from tests.images_corpus import (
    HEADERS_OF_REFUSED_FORMATS,
    animated_gif,
    encode,
    gif_declaring,
    png_declaring,
    rgba_png,
    sideways_jpeg,
)
from tests.integration.fixtures_image import requires_imagenet, shared_photo

TIMEOUT = 20
NO_IMAGE = "No posted image. Should be attribute named image."
CAT_CLASSES = {"Egyptian cat", "tabby, tabby cat", "tiger cat", "Persian cat",
               "Siamese cat, Siamese"}
EXPECTED_TOP1 = {  # from ../shared/README.md
    "cat.bmp": "Egyptian cat",
    "bird.bmp": "chickadee",
    "grace_hopper.bmp": "military uniform",
    "missvickie_potato_chips.bmp": "packet",
}
BOMB_RSS_BUDGET_MB = 250

pytestmark = requires_imagenet
photo = shared_photo


def cat() -> Image.Image:
    return Image.open(io.BytesIO(photo("cat.bmp"))).convert("RGB")


def upload(server: FunctionServer, data: bytes, filename: str = "photo.jpg",
           query: str = "") -> requests.Response:
    """The lesson's Python client: a multipart form with a field named image."""
    return requests.post(server.url + query, files={"image": (filename, data)}, timeout=TIMEOUT)


def top1(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]["label"]


def assert_good_request_still_works(server: FunctionServer) -> None:
    assert top1(upload(server, photo("cat.bmp"))) == "Egyptian cat"


@pytest.mark.parametrize(("name", "label"), sorted(EXPECTED_TOP1.items()))
def test_shared_photos_give_their_known_top1(image_server: FunctionServer, name: str,
                                             label: str) -> None:
    response = upload(image_server, photo(name), filename=name)
    assert top1(response) == label
    body = response.json()
    assert len(body["predictions"]) == 5
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.01
    assert body["model"]["name"] == "image"


def test_large_jpeg_photo_is_a_cat(image_server: FunctionServer) -> None:
    assert top1(upload(image_server, photo("cat_720p.jpg"))) in CAT_CLASSES


def test_raw_image_body_works_like_multipart(image_server: FunctionServer) -> None:
    raw = requests.post(image_server.url, data=photo("bird.bmp"),
                        headers={"Content-Type": "image/bmp"}, timeout=TIMEOUT)
    multipart = upload(image_server, photo("bird.bmp"))
    assert raw.json()["predictions"] == multipart.json()["predictions"]


def test_top_k_sets_the_number_of_predictions(image_server: FunctionServer) -> None:
    response = upload(image_server, photo("cat.bmp"), query="?top_k=20")
    predictions = response.json()["predictions"]
    assert len(predictions) == 20
    assert len({p["class_id"] for p in predictions}) == 20


@pytest.mark.parametrize("variant", ["jpeg", "png", "sideways_exif_jpeg", "rgba_png", "webp"])
def test_same_photo_in_other_forms_gives_same_top1(image_server: FunctionServer,
                                                   variant: str) -> None:
    image = cat()
    data = {
        "jpeg": lambda: encode(image, "JPEG", quality=95),
        "png": lambda: encode(image, "PNG"),
        "sideways_exif_jpeg": lambda: sideways_jpeg(image),
        "rgba_png": lambda: rgba_png(image),
        "webp": lambda: encode(image, "WEBP", quality=95),
    }[variant]()
    assert top1(upload(image_server, data, filename="upload.bin")) == "Egyptian cat"


def test_sideways_photo_without_orientation_is_seen_differently(
        image_server: FunctionServer) -> None:
    # Control for the EXIF test above: the tag, not luck, makes the answer the same.
    rotated = encode(cat().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95)
    upright = upload(image_server, encode(cat(), "JPEG", quality=95)).json()["predictions"]
    turned = upload(image_server, rotated).json()["predictions"]
    assert turned != upright


@pytest.mark.parametrize("mode", ["L", "LA", "P_transparent", "RGBA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_the_models_rgb_input(image_server: FunctionServer, mode: str) -> None:
    image = cat()
    if mode == "P_transparent":
        converted = image.convert("P", palette=Image.Palette.ADAPTIVE)
        converted.info["transparency"] = 0
        data = encode(converted, "PNG", transparency=0)
    elif mode == "I;16":
        grey = image.convert("L")
        wide = Image.frombytes("I;16", grey.size, bytes(
            b for v in grey.tobytes() for b in (v * 257).to_bytes(2, "little")))
        data = encode(wide, "PNG")
    elif mode == "CMYK":
        data = encode(image.convert("CMYK"), "JPEG", quality=95)
    else:
        data = encode(image.convert(mode), "PNG")
    response = upload(image_server, data, filename="x.png")
    assert response.status_code == 200, response.text
    if mode in ("RGBA", "CMYK"):
        assert top1(response) == "Egyptian cat"


def test_greyscale_16_bit_matches_8_bit(image_server: FunctionServer) -> None:
    grey = cat().convert("L")
    wide = Image.frombytes("I;16", grey.size, bytes(
        b for v in grey.tobytes() for b in (v * 257).to_bytes(2, "little")))
    eight = upload(image_server, encode(grey, "PNG")).json()["predictions"][0]
    sixteen = upload(image_server, encode(wide, "PNG")).json()["predictions"][0]
    assert sixteen["label"] == eight["label"]


def test_animated_gif_uses_the_first_frame(image_server: FunctionServer) -> None:
    bird = Image.open(io.BytesIO(photo("bird.bmp"))).convert("RGB").resize(cat().size)
    assert top1(upload(image_server, animated_gif(cat(), bird), "a.gif")) in CAT_CLASSES
    assert top1(upload(image_server, animated_gif(bird, cat()), "b.gif")) == "chickadee"


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
def test_bad_uploads_get_the_right_error(image_server: FunctionServer, case: str, status: int,
                                         code: str) -> None:
    jpeg = encode(cat(), "JPEG")
    png = encode(cat(), "PNG")
    url = image_server.url
    send = {
        "empty_part": lambda: upload(image_server, b""),
        "wrong_field": lambda: requests.post(url, files={"photo": ("a.jpg", jpeg)},
                                             timeout=TIMEOUT),
        "not_an_image": lambda: upload(image_server, b"hello, I am text" * 10, "cat.jpg"),
        "truncated_jpeg": lambda: upload(image_server, jpeg[: len(jpeg) // 2]),
        "truncated_png": lambda: upload(image_server, png[: len(png) // 2], "x.png"),
        "png_bomb": lambda: upload(image_server, png_declaring(30000, 30000), "bomb.png"),
        "gif_bomb": lambda: upload(image_server, gif_declaring(65535, 65535), "bomb.gif"),
        "too_many_bytes": lambda: upload(image_server, b"\xff\xd8\xff" + b"0" * 11_000_000),
        "text_body": lambda: requests.post(url, data=b"hi", headers={"Content-Type": "text/plain"},
                                           timeout=TIMEOUT),
        "top_k_zero": lambda: upload(image_server, jpeg, query="?top_k=0"),
        "top_k_21": lambda: upload(image_server, jpeg, query="?top_k=21"),
        "top_k_word": lambda: upload(image_server, jpeg, query="?top_k=five"),
        **{name: (lambda header=header, name=name: upload(image_server, header, f"x.{name}"))
           for name, header in HEADERS_OF_REFUSED_FORMATS.items()},
    }[case]
    response = send()
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert error["code"] == code
    if code == "missing_image":
        assert error["message"] == NO_IMAGE
    if code == "unsupported_format":
        assert "JPEG, PNG, GIF, WebP or BMP" in error["message"]
    assert_good_request_still_works(image_server)


def test_memory_stays_bounded_on_bombs(image_server: FunctionServer) -> None:
    for _ in range(3):
        assert upload(image_server, png_declaring(30000, 30000), "b.png").status_code == 413
        assert upload(image_server, gif_declaring(65535, 65535), "b.gif").status_code == 413
    assert process_tree_rss_mb(image_server.process.pid) < BOMB_RSS_BUDGET_MB
    assert_good_request_still_works(image_server)


def test_thirty_two_parallel_uploads_give_the_serial_answers(image_server: FunctionServer) -> None:
    names = list(EXPECTED_TOP1) * 8
    serial = [upload(image_server, photo(n)).json()["predictions"] for n in names]
    with ThreadPoolExecutor(max_workers=32) as pool:
        parallel = list(pool.map(lambda n: upload(image_server, photo(n)).json()["predictions"],
                                 names))
    assert parallel == serial


def test_openapi_documents_the_upload(image_server: FunctionServer) -> None:
    spec = requests.get(image_server.url + "/openapi.json", timeout=TIMEOUT).json()
    post = spec["paths"]["/"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "image/*"}
    assert post["parameters"][0]["name"] == "top_k"
