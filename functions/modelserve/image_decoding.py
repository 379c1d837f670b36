"""Safe decoding of untrusted image uploads with Pillow: allow-listed formats, bounded size."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# The format is decided from the bytes, never from the file name or the Content-Type.
_ALLOWED_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
# Recognised so the client hears "unsupported" (415), and never handed to a parser.
_REFUSED_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\x00\x00\x01\x00", "ICO"),
)
# ISO base media files (HEIC, AVIF) carry their brand after a 4-byte box size.
_REFUSED_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF",
                   b"avif": "AVIF", b"avis": "AVIF"}
ALLOWED_TEXT = "JPEG, PNG, GIF, WebP or BMP"
WHITE = (255, 255, 255)
EXIF_ORIENTATION = 0x0112
_ORIENTATIONS = {  # EXIF orientation -> the transpose that shows the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow decodes WebP through libwebp's animation decoder, which holds about twice the memory
# per pixel of the other formats (measured: 187 MB for 12 MP): a WebP pixel counts double.
_DECODE_COST = {"WEBP": 2}
_SIXTEEN_TO_EIGHT_BITS = np.round(np.arange(65536) * (255 / 65535)).astype(np.uint8)
# We enforce a far lower pixel limit ourselves; Pillow's warning (unlike its error, which
# becomes a 413) would only add noise. Filtering once here is thread-safe, unlike
# warnings.catch_warnings() around each decode.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def sniff_format(data: bytes) -> str | None:
    """The allowed format the bytes start with; 415 for a known other format; None if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _ALLOWED_SIGNATURES:
        if data.startswith(signature):
            return name
    refused = _REFUSED_BRANDS.get(data[8:12]) if data[4:8] == b"ftyp" else None
    for signature, name in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            refused = name
    if refused:
        raise UnsupportedMediaType("unsupported_format",
                                   f"Unsupported image format: {refused}. Send {ALLOWED_TEXT}.",
                                   "image")
    return None


def decode_image(data: bytes, max_pixels: int, target_size: tuple[int, int]) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image (first frame only).

    Raises 400 for bytes that are no image or are truncated, 413 when decoding would produce
    more than `max_pixels`, 415 for formats outside the allow-list. Memory stays near one
    decoded copy: JPEG decodes at a reduced scale (still at least `target_size`), and every
    image is shrunk to about twice `target_size` before any conversion copies it.
    """
    image_format = sniff_format(data)
    if image_format is None:
        raise BadRequest("not_an_image", f"The upload is not an image; send {ALLOWED_TEXT}.",
                         "image")
    try:
        image = Image.open(io.BytesIO(data), formats=[image_format])
        declared = image.size
        if image_format == "JPEG":
            image.draft("RGB", target_size)  # decoded size: declared / 1, 2, 4 or 8
        _check_pixels(declared, image.size, max_pixels // _DECODE_COST.get(image_format, 1))
        image.load()  # the first frame only: animated images are never iterated
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        small = _shrink(_reducible(image), target_size)
        upright = small.transpose(_ORIENTATIONS[orientation]) if orientation in _ORIENTATIONS \
            else small
    except Image.DecompressionBombError:
        raise _too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError, EOFError,
            IndexError, TypeError, struct.error) as exc:
        raise BadRequest("invalid_image", f"The {image_format} image cannot be decoded: "
                         f"{_reason(exc)}.", "image") from None
    return to_rgb(upright)


def _check_pixels(declared: tuple[int, int], decoded: tuple[int, int], max_pixels: int) -> None:
    width, height = declared
    if width <= 0 or height <= 0:
        raise ValueError("the image has no pixels")
    if decoded[0] * decoded[1] > max_pixels:
        raise _too_many_pixels(max_pixels, declared)


def _reducible(image: Image.Image) -> Image.Image:
    """The image in a mode Image.reduce accepts, without widening its pixels much."""
    if image.mode.startswith("I;16"):
        return _wide_grey_to_l(image)
    if image.mode == "1":
        return image.convert("L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image


def _shrink(image: Image.Image, target_size: tuple[int, int]) -> Image.Image:
    """Box-reduce by a whole factor while staying at least twice `target_size`."""
    factor = min(image.width // (2 * target_size[0]), image.height // (2 * target_size[1]))
    return image.reduce(factor) if factor >= 2 else image


def _too_many_pixels(max_pixels: int, size: tuple[int, int] | None = None) -> PayloadTooLarge:
    declared = f" ({size[0]} x {size[1]})" if size else ""
    return PayloadTooLarge("too_many_pixels", f"The image declares more pixels{declared} than "
                           f"the limit of {max_pixels}.", "image")


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower():
        return "the file is truncated"
    return text[:80].rstrip(".")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as 8-bit RGB; transparency is composited on white, never kept as a channel."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16"):
        return _wide_grey_to_l(image).convert("RGB")
    if mode in ("I", "F"):
        return _wide_grey_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_grey_to_l(image: Image.Image) -> Image.Image:
    # Pillow clips 16-bit values when converting to 8 bits; scale them instead (a table lookup:
    # one byte per pixel out, no float copy).
    grey = _SIXTEEN_TO_EIGHT_BITS[np.asarray(image, dtype=np.uint16)]
    return Image.fromarray(grey, "L")


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    # 32-bit integer or float greyscale: 16-bit values when any exceed 255, else 8-bit.
    values = np.asarray(image, dtype=np.float32)
    top = 65535.0 if values.max(initial=0) > 255 else 255.0
    grey = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")
