"""Secrets: which names hold credentials, the value redactor, and the one marker.

Every layer that hides a secret uses this module, so a value hidden in one
place is never written out in another:

* ``MARKER`` (``[REDACTED]``) is what a hidden value is replaced by, everywhere;
* ``is_secret_name(name)`` is the one rule for which settings, environment
  variables and dict entries hold credentials; ``redact_named(data)`` blanks
  such entries of a JSON-like value (what the store writes, what the LLM layer
  reports about its settings);
* ``Redactor`` knows the secret *values* (see below) and replaces them in
  any text.

A name is secret when (case-insensitive, ``-`` read as ``_``) it

* is one of a few whole words (``token``, ``bearer``, ``headers``, ``cookie`` ...),
* ends with ``_key``, ``_token``, ``_secret`` or ``_password``
  (``openai_key``, ``private_key``, ``X-Key``, ``aws_session_token``), or
* contains ``api_key``, ``secret``, ``password``, ``authorization``,
  ``credential`` and a few more (``aws_secret_access_key``, ``vertex_credentials``).

Counts stay visible: ``input_tokens``, ``max_tokens``, ``session_tokens``,
``keys`` and ``key_count`` are not secret names.  The rule errs on the safe
side: a harmless ``sort_key`` is hidden too.

``json_names_secret(text)`` says whether JSON text has such a key (the
store and the redactor walk only those payloads; counts like
``"input_tokens"`` no longer send every usage report through the walk).

This module imports nothing from the package at import time, so any layer
(the engine included) can use it without pulling in the observers.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

__all__ = [
    "MARKER",
    "is_secret_name",
    "might_name_secret",
    "json_names_secret",
    "redact_named",
    "SECRET_NAME_HINTS",
]

#: What every hidden secret is replaced by, in every sink.
MARKER = "[REDACTED]"

_WHOLE = frozenset({"token", "bearer", "passwd", "headers", "extra_headers", "cookie", "set_cookie"})
_ENDINGS = ("_key", "_token", "_secret", "_password", "_passwd")
# Anywhere in the name.  No "..._token" here: the ending rule catches those,
# and as parts they would hide counts ("session_tokens", "paid_tokens").
_PARTS = ("api_key", "apikey", "secret", "password", "authorization", "credential", "private_key")

# Every secret name contains one of these (lower-cased): a cheap test that
# lets text without any skip a full walk.  Kept a superset of the rule above
# (tests/test_store_basic.py checks it).
SECRET_NAME_HINTS = ("key", "token", "secret", "passw", "authorization", "credential", "bearer", "header", "cookie")


def is_secret_name(name: str) -> bool:
    """Whether a setting, header or dict entry called ``name`` holds a credential."""
    lowered = name.strip().lower().replace("-", "_")
    return lowered in _WHOLE or lowered.endswith(_ENDINGS) or any(part in lowered for part in _PARTS)


def might_name_secret(text: str) -> bool:
    """False only when ``text`` cannot contain a secret name (see ``SECRET_NAME_HINTS``)."""
    lowered = text.lower()  # plain substring tests: much faster than a case-insensitive regex
    return any(hint in lowered for hint in SECRET_NAME_HINTS)


# An object key in JSON text: a string (escapes allowed) followed by a colon.  In valid JSON
# only keys are followed by a colon, so this finds every key and nothing else.
_JSON_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


@functools.lru_cache(maxsize=4096)
def _secret_key(raw: str) -> bool:
    name = raw
    if "\\" in raw:
        try:
            name = json.loads(f'"{raw}"')
        except ValueError:
            pass
    return is_secret_name(name)


def _json_keys(text: str) -> list[str]:
    if '\\"' in text or '" :' in text:  # a quote inside a string, or unusual spacing: the exact pattern
        return _JSON_KEY.findall(text)
    # Otherwise every key ends with '":' and starts at the last quote before it.  The same
    # two characters can also be an opening quote and a colon (a key or value starting with
    # ':'): that only adds candidates or drops a leading ':', which never hides a secret name.
    # A third of the time the pattern takes, and this runs on every event logged.
    pieces = text.split('":')
    return [piece[piece.rfind('"') + 1 :] for piece in pieces[:-1]]


def json_names_secret(text: str) -> bool:
    """Whether the JSON ``text`` has an object key that ``is_secret_name``: exact, and cheap
    enough to run on every event (``"input_tokens"`` and other counts do not count)."""
    return might_name_secret(text) and any(_secret_key(key) for key in _json_keys(text))


def redact_named(value: Any) -> Any:
    """A copy of ``value`` with the values of credential-named dict entries replaced by ``MARKER``.

    Applied to everything free-form the store writes (session metadata,
    engine state, event payloads) so that a key placed there by mistake
    never reaches the disk.  Empty values stay as they are (nothing to hide).
    """
    if isinstance(value, dict):
        return {
            k: (MARKER if isinstance(k, str) and is_secret_name(k) and v else redact_named(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_named(v) for v in value]
    return value
