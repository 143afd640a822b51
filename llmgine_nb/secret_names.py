"""Which names hold secrets: one rule for everything that hides credentials.

``is_secret_name("api_key")`` is what the LLM layer uses to drop settings
from events and logs, and what the store uses to blank dict entries before
they reach the disk.  One rule, so that a name hidden in one place is never
written out in another.

A name is secret when (case-insensitive, ``-`` read as ``_``) it

* is one of a few whole words (``token``, ``bearer``, ``headers``, ``cookie`` ...),
* ends with ``_key``, ``_token``, ``_secret`` or ``_password``
  (``openai_key``, ``private_key``, ``X-Key``, ``aws_session_token``), or
* contains ``api_key``, ``secret``, ``password``, ``authorization``,
  ``credential`` and a few more (``aws_secret_access_key``, ``vertex_credentials``).

Counts stay visible: ``input_tokens``, ``max_tokens``, ``session_tokens``,
``keys`` and ``key_count`` are not secret names.  The rule errs on the safe
side: a harmless ``sort_key`` is hidden too.

This module imports nothing from the package, so any layer can use it.
"""

from __future__ import annotations

__all__ = ["is_secret_name", "might_name_secret", "SECRET_NAME_HINTS"]

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
