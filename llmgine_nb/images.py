"""Images in prompts: from what a notebook holds to bytes a vision model takes.

    image = load_image(fig)            # a matplotlib figure, a PIL image, a path, bytes,
    image.data, image.mime, image.width  # an IPython.display.Image or a cell's image output

A ``LoadedImage`` is bytes with their format and size; the store keeps the
bytes once per sha256 (``Store.put_image``) and messages carry only an
``ImageRef`` (``llmgine_nb.chat``).  Formats are read from the bytes
themselves (PNG, JPEG, GIF, WebP: the formats vision models take), never
from a file's name.  Nothing here imports matplotlib or PIL: a value is
recognised by the modules already loaded.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chat import ImageRef

__all__ = ["LoadedImage", "ImageError", "load_image", "is_image", "sniff", "image_tokens", "MAX_IMAGE_BYTES"]

#: The largest image sent (OpenAI's limit per image is 20 MB).
MAX_IMAGE_BYTES = 20_000_000
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
_OUTPUT_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class ImageError(ValueError):
    """A value that cannot be sent as an image; the message says what would work."""


@dataclass(frozen=True)
class LoadedImage:
    """An image's bytes with what was read from them."""

    data: bytes
    mime: str
    width: int
    height: int
    label: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def ref(self) -> ImageRef:
        """The image as message data (without its bytes)."""
        return ImageRef(sha256=self.sha256, mime=self.mime, size=len(self.data), width=self.width,
                        height=self.height, label=self.label)


# -- reading formats from bytes -------------------------------------------------------------


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return 0, 0


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return 0, 0


def sniff(data: bytes) -> tuple[str, int, int] | None:
    """(mime, width, height) read from the bytes, or None when they are no PNG, JPEG, GIF or WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8\xff"):
        return ("image/jpeg", *_jpeg_size(data))
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ("image/webp", *_webp_size(data))
    return None


# -- recognising values ---------------------------------------------------------------------


def _instance_of(value: Any, module: str, name: str) -> bool:
    loaded = sys.modules.get(module)  # never import a library just to check
    cls = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(cls, type) and isinstance(value, cls)


def _is_figure(value: Any) -> bool:
    return _instance_of(value, "matplotlib.figure", "Figure")


def _is_pil(value: Any) -> bool:
    return _instance_of(value, "PIL.Image", "Image")


def _is_ipython_image(value: Any) -> bool:
    return _instance_of(value, "IPython.core.display", "Image")


def _looks_like_path(value: Any) -> bool:
    if isinstance(value, Path):
        return True
    return isinstance(value, str) and "\n" not in value and value.lower().endswith(_IMAGE_SUFFIXES)


def is_image(value: Any) -> bool:
    """True for what ``load_image`` takes without reading a file (a path counts when the file exists)."""
    if _is_figure(value) or _is_pil(value) or _is_ipython_image(value):
        return True
    if isinstance(value, (bytes, bytearray)):
        return sniff(bytes(value[:64 * 1024])) is not None
    if isinstance(value, Mapping):
        return any(mime in value for mime in _OUTPUT_MIMES)
    return _looks_like_path(value) and os.path.isfile(value)


# -- loading ----------------------------------------------------------------------------------


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _pil_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _from_output(bundle: Mapping[str, Any]) -> bytes:
    import base64

    for mime in _OUTPUT_MIMES:
        if mime in bundle:
            value = bundle[mime]
            return value if isinstance(value, bytes) else base64.b64decode(value)
    raise ImageError("This output holds no PNG, JPEG, GIF or WebP image; give a figure, an image or a file path.")


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_IMAGE_BYTES:
            raise ImageError(f"The image {os.fspath(path)!r} is {size:,} bytes; images up to {MAX_IMAGE_BYTES:,} bytes "
                             "can be sent: make it smaller first.")
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"Cannot read the image file {os.fspath(path)!r} ({exc.strerror or exc}); "
                         "give the path of a PNG, JPEG, GIF or WebP file.") from None


def _raw_bytes(value: Any) -> bytes:
    if _is_figure(value):
        return _figure_png(value)
    if _is_pil(value):
        return _pil_png(value)
    if _is_ipython_image(value):
        if value.data is None and value.filename:
            return _read_file(value.filename)
        data = value.data
        return data if isinstance(data, bytes) else _from_output({"image/png": data})
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, Mapping):
        return _from_output(value)
    if isinstance(value, (str, Path)):
        return _read_file(value)
    raise ImageError(
        f"A {type(value).__name__} is not an image; give a matplotlib figure, a PIL image, "
        "the path of a PNG, JPEG, GIF or WebP file, or image bytes."
    )


def load_image(value: Any, *, label: str | None = None) -> LoadedImage:
    """The image ``value`` holds, as PNG/JPEG/GIF/WebP bytes; ``ImageError`` says what else works."""
    data = _raw_bytes(value)
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"The image {label or ''} is {len(data):,} bytes; images up to "
                         f"{MAX_IMAGE_BYTES:,} bytes can be sent: make it smaller first.".replace("  ", " "))
    found = sniff(data)
    if found is None:
        raise ImageError(
            f"{label or 'The value'} is not a PNG, JPEG, GIF or WebP image (the formats vision models take); "
            "convert it first, e.g. PIL.Image.open(path).save('image.png')."
        )
    mime, width, height = found
    return LoadedImage(data, mime, width, height, label)


def image_tokens(width: int, height: int) -> int:
    """What an image costs in a request, by OpenAI's rule for detail "high" (the default "auto" on large images).

    Scaled to fit 2048x2048, then its shortest side to 768; 170 tokens per
    512-pixel tile plus 85.  An image of unknown size counts as one tile.
    """
    if width <= 0 or height <= 0:
        return 85 + 170
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
