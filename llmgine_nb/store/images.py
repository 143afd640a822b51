"""Images: bytes stored once per sha256; messages refer to them by ``ImageRef``.

Plain functions over a ``Connection`` (``database.py``: SQLite or PostgreSQL) (the ``Store`` facade holds
the lock and the transaction).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..chat import ChatMessage, ImageRef
from .database import Connection
from .records import StoreError
from .rows import utc_text

__all__ = ["put", "get_data", "with_data", "count"]


def put(conn: Connection, image: ImageRef, data: bytes) -> bool:
    """Keep ``data`` under ``image.sha256`` unless it is there already; True when it was new."""
    cursor = conn.execute(
        "INSERT INTO images (sha256, mime, size, width, height, data, created) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT (sha256) DO NOTHING",
        (image.sha256, image.mime, image.size, image.width, image.height, data, utc_text()),
    )
    return cursor.rowcount == 1


def get_data(conn: Connection, hashes: Iterable[str]) -> dict[str, bytes]:
    """The stored bytes of each of ``hashes`` that is stored."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    found = conn.execute(f"SELECT sha256, data FROM images WHERE sha256 IN ({marks})", wanted).fetchall()
    return {sha: bytes(data) for sha, data in found}


def with_data(conn: Connection, messages: list[ChatMessage]) -> list[ChatMessage]:
    """``messages`` with the bytes of their images at hand (copies; messages without images as they are)."""
    data = get_data(conn, (image.sha256 for m in messages for image in m.images if image.data is None))
    out = []
    for message in messages:
        if not message.images or all(image.data is not None for image in message.images):
            out.append(message)
            continue
        images = []
        for image in message.images:
            if image.data is None:
                if image.sha256 not in data:
                    raise StoreError(
                        f"the image {image.describe()} ({image.sha256[:12]}...) is not in this store; "
                        "add it with Store.put_image() before sending the message"
                    )
                image = image.model_copy(update={"data": data[image.sha256]})
            images.append(image)
        out.append(message.model_copy(update={"images": images}))
    return out


def count(conn: Connection) -> int:
    (n,) = conn.execute("SELECT count(*) FROM images").fetchone()
    return int(n)
