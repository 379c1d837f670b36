"""The hostile image corpus: uploads and the answers classify_image must give them.

Every case is generated (tests/images_corpus.py; the photos from tests/colour_classifier.py).
tests/unit/test_hostile_images_inprocess.py checks each answer and its time in-process;
tests/integration/test_hostile_images.py measures a real server's peak memory on them.
The classifier's 64x64 input changes only the last resize: decoding limits, draft decoding of
JPEG (to 1/8 at most) and the memory a decode takes depend on the file, not on the model.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tests.colour_classifier import photo
from tests.images_corpus import (
    HEADERS_OF_REFUSED_FORMATS,
    MORE_REFUSED_HEADERS,
    NOT_IMAGES,
    PNG_GREY,
    PNG_RGB,
    PNG_RGBA,
    bmp_declaring,
    cut_end,
    encode,
    flip_middle,
    jpeg_declaring,
    many_frame_gif,
    png_declaring,
    png_raw,
    png_with_text_bomb,
    webp_declaring,
    wide_grey_png,
)

GOOD_COLOUR = "red"  # the good upload after every case: photo("red") must still be "red"
ANSWER_SECONDS = 5.0  # generous: the machine has 2 cores and other tests run beside these
RSS_BUDGET_MB = 250  # classify_image's budget (terraform: "below 250 MB", instance 512Mi)
AT_PIXEL_LIMIT = 3464  # 3464 x 3464 = 11,999,296: just within MAX_IMAGE_PIXELS' 12,000,000


@dataclass(frozen=True)
class Case:
    """One hostile upload and the answer it must get."""

    make: Callable[[], bytes]
    status: int
    code: str | None = None  # the first error's code; None for a 200
    filename: str = "upload.jpg"
    content_type: str | None = None  # a raw image/* body instead of the multipart field


def _photo(image_format: str, **options: object) -> Callable[[], bytes]:
    # 640 x 480, as the shared photos: whether flipped bytes break a stream (400) or are
    # concealed (200) depends on the bytes; for this seeded photo they break every format
    # but lossy WebP, as for cat.bmp.
    def make() -> bytes:
        image = Image.open(io.BytesIO(photo(GOOD_COLOUR, (640, 480)))).convert("RGB")
        return encode(image, image_format, **options)
    return make


def _solid(image_format: str, size: tuple[int, int], mode: str = "RGB",
           **options: object) -> Callable[[], bytes]:
    return lambda: encode(Image.new(mode, size, 128), image_format, **options)


JPEG, PNG, WEBP = _photo("JPEG", quality=90), _photo("PNG"), _photo("WEBP", quality=90)
GIF, BMP = _photo("GIF"), _photo("BMP")
LIMIT = (AT_PIXEL_LIMIT, AT_PIXEL_LIMIT)
WEBP_LIMIT = (2449, 2449)  # 5,997,601: within half of MAX_IMAGE_PIXELS

CASES: dict[str, Case] = {
    # Bombs: headers declaring more pixels than MAX_IMAGE_PIXELS, refused before decoding.
    "jpeg_declaring_65500x65500": Case(lambda: jpeg_declaring(65500, 65500), 413,
                                       "too_many_pixels"),
    "bmp_declaring_50000x50000": Case(lambda: bmp_declaring(50000, 50000), 413,
                                      "too_many_pixels", "bomb.bmp"),
    "bmp_top_down_declaring_50000x50000": Case(lambda: bmp_declaring(50000, -50000), 413,
                                               "too_many_pixels", "bomb.bmp"),
    "webp_declaring_16384x16384": Case(lambda: webp_declaring(16384, 16384), 413,
                                       "too_many_pixels", "bomb.webp"),
    "png_declaring_1x2147483647": Case(lambda: png_declaring(1, 2**31 - 1), 413,
                                       "too_many_pixels", "bomb.png"),
    "png_ztxt_inflating_to_64MB": Case(png_with_text_bomb, 400, "invalid_image", "bomb.png"),
    # Truncated (the end cut off) and corrupted (bytes flipped in the middle).
    "jpeg_cut_end": Case(lambda: cut_end(JPEG(), 64), 400, "invalid_image"),
    "jpeg_flipped_middle": Case(lambda: flip_middle(JPEG()), 400, "invalid_image"),
    "png_cut_end": Case(lambda: cut_end(PNG(), 64), 400, "invalid_image", "x.png"),
    "png_flipped_middle": Case(lambda: flip_middle(PNG()), 400, "invalid_image", "x.png"),
    "webp_cut_end": Case(lambda: cut_end(WEBP(), 64), 400, "invalid_image", "x.webp"),
    # Lossy WebP conceals damaged data (libwebp decodes it): a valid, if blotched, image.
    "webp_flipped_middle": Case(lambda: flip_middle(WEBP()), 200, filename="x.webp"),
    "gif_cut_end": Case(lambda: cut_end(GIF(), 64), 400, "invalid_image", "x.gif"),
    "bmp_cut_end": Case(lambda: cut_end(BMP(), 64), 400, "invalid_image", "x.bmp"),
    "only_jpeg_magic": Case(lambda: NOT_IMAGES["only_jpeg_magic"], 400, "invalid_image"),
    "only_png_magic": Case(lambda: NOT_IMAGES["only_png_magic"], 400, "invalid_image", "x.png"),
    # Empty uploads.
    "empty_raw_body": Case(lambda: b"", 400, "missing_image", content_type="image/jpeg"),
    # Not images, under image names or image content types.
    **{f"{name}_named_image": Case(lambda data=data: data, 400, "not_an_image", "photo.png")
       for name, data in NOT_IMAGES.items() if not name.startswith("only_")},
    "svg_as_raw_image_svg": Case(lambda: NOT_IMAGES["svg"], 400, "not_an_image",
                                 content_type="image/svg+xml"),
    # Formats outside the allow-list, recognised and never parsed.
    **{f"{name}_raw_body": Case(lambda data=data: data, 415, "unsupported_format",
                                content_type=f"image/{name}")
       for name, data in {**HEADERS_OF_REFUSED_FORMATS, **MORE_REFUSED_HEADERS}.items()},
    # Valid but unusual: many frames, extreme shapes, wide samples, CMYK.
    "gif_500_frames": Case(many_frame_gif, 200, filename="anim.gif"),
    "png_1x1": Case(_solid("PNG", (1, 1)), 200, filename="x.png"),
    "jpeg_1x1": Case(_solid("JPEG", (1, 1)), 200),
    "gif_1x1": Case(_solid("GIF", (1, 1), "L"), 200, filename="x.gif"),
    "bmp_1x1": Case(_solid("BMP", (1, 1)), 200, filename="x.bmp"),
    "webp_1x1": Case(_solid("WEBP", (1, 1)), 200, filename="x.webp"),
    "png_10000x1": Case(_solid("PNG", (10000, 1)), 200, filename="x.png"),
    "png_1x10000": Case(_solid("PNG", (1, 10000)), 200, filename="x.png"),
    "jpeg_10000x1": Case(_solid("JPEG", (10000, 1)), 200),
    "png_rgb16": Case(lambda: png_raw(224, 224, 16, PNG_RGB), 200, filename="x.png"),
    "png_rgba16": Case(lambda: png_raw(224, 224, 16, PNG_RGBA), 200, filename="x.png"),
    "png_grey16": Case(lambda: wide_grey_png(300, 200), 200, filename="x.png"),
    "jpeg_cmyk": Case(_solid("JPEG", (300, 200), "CMYK"), 200),
    "jpeg_sent_as_image_png": Case(JPEG, 200, content_type="image/png"),
}

# Legal bombs: tiny files that really are as large as the pixel limit allows. Each runs on a
# fresh server: memory freed after such a decode is not returned to the system (glibc keeps
# it), so it would skew the peak measured for every case after it.
AT_LIMIT_CASES: dict[str, Case] = {
    "jpeg_at_pixel_limit": Case(_solid("JPEG", LIMIT, quality=50), 200),
    "png_rgb8_at_pixel_limit": Case(lambda: png_raw(*LIMIT, 8, PNG_RGB), 200,
                                    filename="big.png"),
    "png_rgba8_at_pixel_limit": Case(lambda: png_raw(*LIMIT, 8, PNG_RGBA), 200,
                                     filename="big.png"),
    "png_grey16_at_pixel_limit": Case(lambda: png_raw(*LIMIT, 16, PNG_GREY), 200,
                                      filename="big.png"),
    # WebP pixels count double (libwebp's decoder holds ~16 bytes a pixel).
    "webp_rgba_at_pixel_limit": Case(_solid("WEBP", WEBP_LIMIT, "RGBA", lossless=True), 200,
                                     filename="big.webp"),
    "webp_rgba_over_its_pixel_limit": Case(_solid("WEBP", LIMIT, "RGBA", lossless=True), 413,
                                           "too_many_pixels", filename="big.webp"),
    "png_rgba8_2048x2048": Case(lambda: png_raw(2048, 2048, 8, PNG_RGBA), 200,
                                filename="big.png"),
}



def check_answer(status: int, content_type: str, body: dict, case: Case) -> None:
    """The answer a case must get: its status, JSON, and its error code or predictions."""
    assert status == case.status, body
    assert content_type == "application/json"
    if case.code is None:
        assert body["predictions"] and body["model"]["name"] == "image"
    else:
        assert body["errors"][0]["code"] == case.code
