"""Image files made by the tests: good variants of a photo, and hostile inputs."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW_ON_DISPLAY = 6  # the stored pixels must be turned 90 degrees clockwise to show


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def sideways_jpeg(image: Image.Image) -> bytes:
    """A JPEG stored rotated, with the EXIF tag that tells viewers how to turn it upright."""
    stored = image.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW_ON_DISPLAY
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def rgba_png(image: Image.Image) -> bytes:
    """The photo with an alpha channel (opaque, with a transparent border)."""
    rgba = image.convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, image.size[0], 4))
    rgba.putalpha(alpha)
    return encode(rgba, "PNG")


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


def gif_declaring(width: int, height: int) -> bytes:
    """A tiny GIF whose screen and frame declare width x height."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + frame + b"\x3b"


def animated_gif(first: Image.Image, second: Image.Image, frames: int = 2) -> bytes:
    """An animated GIF whose first frame is `first` and every later frame `second`."""
    later = [second.convert("P", palette=Image.Palette.ADAPTIVE)] * (frames - 1)
    return encode(first.convert("P", palette=Image.Palette.ADAPTIVE), "GIF", save_all=True,
                  append_images=later, duration=40, loop=0)


HEADERS_OF_REFUSED_FORMATS = {
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    "tiff": b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64,
    "psd": b"8BPS\x00\x01" + b"\x00" * 64,
}
