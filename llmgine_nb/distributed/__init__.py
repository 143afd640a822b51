"""The bus across processes: a transport interface and its Redis Streams implementation.

- ``transport.py``: ``Transport`` (``send`` a command, ``follow`` a session's events) and
  ``LocalTransport``, the in-process default over a ``SessionHub``;
- ``redis_transport.py``: ``RedisTransport``, a front end's side over Redis Streams;
- ``worker.py``: ``Worker``, engines in a worker process (``llmgine-nb worker``);
- ``partitions.py``, ``leases.py``, ``forwarder.py``, ``keys.py``: its parts.

Nothing here is imported by ``import llmgine_nb``; redis-py is needed only
for the Redis parts (``pip install 'llmgine-nb[distributed]'``).
"""

from __future__ import annotations

from .keys import Keys
from .transport import LocalTransport, Transport, event_of

__all__ = ["Keys", "Transport", "LocalTransport", "event_of"]
