"""Safe decoding of untrusted image uploads with Pillow: allow-listed formats, bounded size."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
ALLOWED_TEXT = "JPEG, PNG, GIF, WebP or BMP"
WHITE = (255, 255, 255)


def sniff_format(data: bytes) -> str | None:
    """The allowed format the bytes start with; 415 for a known other format; None if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _ALLOWED_SIGNATURES:
        if data.startswith(signature):
            return name
    for signature, name in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedMediaType("unsupported_format",
                                       f"Unsupported image format: {name}. Send {ALLOWED_TEXT}.",
                                       "image")
    return None


def decode_image(data: bytes, max_pixels: int, target_size: tuple[int, int]) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image (first frame only).

    Raises 400 for bytes that are no image or are truncated, 413 when the image declares more
    than `max_pixels`, 415 for formats outside the allow-list. `target_size` lets JPEG decode
    at a reduced scale that is still at least that large.
    """
    image_format = sniff_format(data)
    if image_format is None:
        raise BadRequest("not_an_image", f"The upload is not an image; send {ALLOWED_TEXT}.",
                         "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[image_format])
            _check_pixels(image.size, max_pixels)
            if image_format == "JPEG":
                image.draft("RGB", target_size)
            image.load()  # the first frame only: animated images are never iterated
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, SyntaxError, ValueError, OSError, EOFError,
            IndexError, TypeError, struct.error) as exc:
        raise BadRequest("invalid_image", f"The {image_format} image cannot be decoded: "
                         f"{_reason(exc)}.", "image") from None
    return to_rgb(upright)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError("the image has no pixels")
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels, size)


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
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _wide_grey_to_rgb(image)
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow clips 16-bit values when converting to 8 bits; scale them instead.
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    grey = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")
