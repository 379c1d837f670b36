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


# --- Hostile inputs for tests/integration/test_hostile_images.py -------------------------------

def cut_end(data: bytes, removed: int) -> bytes:
    """The file without its last `removed` bytes (an upload that stopped early)."""
    return data[:-removed]


def flip_middle(data: bytes, count: int = 32) -> bytes:
    """The file with `count` bytes in the middle inverted (corruption in transit or on disk)."""
    middle = len(data) // 2
    flipped = bytes(b ^ 0xFF for b in data[middle: middle + count])
    return data[:middle] + flipped + data[middle + count:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


PNG_GREY, PNG_RGB, PNG_RGBA = 0, 2, 6
_PNG_CHANNELS = {PNG_GREY: 1, PNG_RGB: 3, PNG_RGBA: 4}


def png_raw(width: int, height: int, bit_depth: int, color_type: int,
            extra_chunks: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A valid PNG of any bit depth Pillow cannot write (16-bit RGB, RGBA), with a gradient.

    Rows are compressed one at a time, so a large image costs little memory to make; the
    file is tiny when the image is large (a legal decompression bomb below the pixel limit).
    """
    bytes_per_sample = bit_depth // 8
    row_bytes = width * _PNG_CHANNELS[color_type] * bytes_per_sample
    compressor = zlib.compressobj(9)
    parts = []
    for y in range(height):
        value = (y * 255 // max(height - 1, 1)).to_bytes(1, "big") * bytes_per_sample
        parts.append(compressor.compress(b"\x00" + value * (row_bytes // bytes_per_sample)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header), *(_png_chunk(k, d) for k, d in extra_chunks),
              _png_chunk(b"IDAT", b"".join(parts)), _png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def png_with_text_bomb(megabytes: int = 64) -> bytes:
    """A 16 x 16 PNG carrying a zTXt chunk that inflates to `megabytes` MB of text."""
    text = zlib.compress(b"A" * (megabytes * 1024 * 1024), 9)
    return png_raw(16, 16, 8, PNG_GREY, ((b"zTXt", b"comment\x00\x00" + text),))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to declare width x height."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (200, 30, 30)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    """A BMP header declaring width x height at 24 bits, followed by almost no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\x00" * 64
    size = 14 + len(info) + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, 14 + len(info)) + info + pixels


def webp_declaring(width: int, height: int) -> bytes:
    """A lossless WebP whose VP8L header is patched to declare width x height (max 16384)."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (30, 200, 30)), "WEBP", lossless=True))
    vp8l = data.index(b"VP8L") + 8  # chunk header: fourcc, size; then the 0x2f signature
    bits = int.from_bytes(data[vp8l + 1: vp8l + 5], "little")
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[vp8l + 1: vp8l + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def many_frame_gif(frames: int = 500, size: tuple[int, int] = (64, 64)) -> bytes:
    """An animated GIF of `frames` different frames."""
    images = [Image.new("P", size, i % 256) for i in range(frames)]
    for image in images:
        image.putpalette([c for i in range(256) for c in (i, 255 - i, (i * 7) % 256)])
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20,
                  loop=0, optimize=False)


def wide_grey_png(width: int, height: int) -> bytes:
    """A 16-bit greyscale PNG (mode I;16) with a horizontal gradient."""
    row = [x * 65535 // max(width - 1, 1) for x in range(width)]
    data = b"".join(v.to_bytes(2, "little") for v in row) * height
    return encode(Image.frombytes("I;16", (width, height), data), "PNG")


NOT_IMAGES = {
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)'
           b"</script></svg>",
    "html": b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 64,
    "elf": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
    "json": b'{"image": "cat.jpg"}',
    "only_jpeg_magic": b"\xff\xd8\xff",
    "only_png_magic": b"\x89PNG\r\n\x1a\n",
    "riff_not_webp": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64,
}
MORE_REFUSED_HEADERS = {
    "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
    "avif": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64,
    "ico": b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00" + b"\x00" * 64,
    "jpeg2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 64,
    "tiff_big_endian": b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 64,
}
