"""The access log never holds a credential that was put in a URL by mistake.

Tokens travel in headers or a WebSocket's first message, and tickets are
single-use; but a client may still send ``?token=lnb_...`` (refused with 401)
and the access log would keep it.  ``QueryRedaction`` rewrites the query of
every logged path first: the value of any parameter whose name says it holds
a credential (token, ticket, key, secret, password ...), and any value shaped
like one of our tokens or tickets, becomes ``[redacted]``.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from ..secrets import is_secret_name
from ..store.users import TOKEN_PREFIX
from .auth import TICKET_PREFIX

__all__ = ["QueryRedaction", "redact_query", "install_access_log_redaction", "ACCESS_LOGGER"]

#: uvicorn's access logger: ``'%s - "%s %s HTTP/%s" %d'`` with the path and its query as one argument.
ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
_CREDENTIAL_NAMES = ("ticket",)  # named so here, beside what ``is_secret_name`` knows (token, key, password ...)


def _hides_credential(name: str, value: str) -> bool:
    return (is_secret_name(name) or name.strip().lower() in _CREDENTIAL_NAMES
            or value.startswith((TOKEN_PREFIX, TICKET_PREFIX)))


def redact_query(path: str) -> str:
    """``path`` with the values of credential-looking query parameters replaced (the rest kept as sent)."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if equals and _hides_credential(unquote_plus(name), unquote_plus(value)):
            pair = f"{name}={REDACTED}"
        elif not equals and unquote_plus(name).startswith((TOKEN_PREFIX, TICKET_PREFIX)):
            pair = REDACTED  # a bare ``?lnb_...``
        pairs.append(pair)
    return f"{base}?{'&'.join(pairs)}"


class QueryRedaction(logging.Filter):
    """Rewrites the query of every path-like argument of a log record (never drops the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "?" in a for a in record.args):
            record.args = tuple(redact_query(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        return True


def install_access_log_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Put ``QueryRedaction`` on the access logger (once; logging config keeps a logger's filters)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, QueryRedaction) for f in logger.filters):
        logger.addFilter(QueryRedaction())
