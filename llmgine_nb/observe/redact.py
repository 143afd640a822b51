"""Keep secrets out of everything persisted, exported or displayed.

A ``Redactor`` knows the secret values - API keys and tokens from the
environment and the ``.env`` file, and any the application registers with
``add()`` - and replaces each occurrence with ``[REDACTED]``.  The event log,
the JSONL export and the OpenTelemetry spans all pass their payloads through
one, so a key that leaks into an error message or a tool argument never
reaches disk or a trace backend; the notebook runtime passes the output of
every ``%llmgine`` turn through the same one before it is shown.

    redactor = Redactor(["my-db-password"])
    redactor.text("auth failed for sk-live-123...")   # 'auth failed for [REDACTED]'
    redactor.json(event)                              # the event as redacted JSON text

Values are matched as they are, and also in their JSON-escaped form, so the
JSON text of an event can be redacted in one pass without parsing it.  On
top of values, ``json()``/``record()`` blank dict entries whose *names* say
they hold a credential (``api_key``, ``authorization`` ...), the same rule the
store applies.

A limit worth knowing: a secret split across several streamed text deltas
is only caught once the pieces are joined (``LLMCallFinished.text`` is);
that is one reason the event log does not keep deltas by default.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..messages import Message
from ..secret_names import json_names_secret
from ..secrets import redact_named as redact_secrets

__all__ = ["Redactor", "SECRET_ENV_PATTERN", "REDACTED"]

log = logging.getLogger("llmgine_nb.observe.redact")

REDACTED = "[REDACTED]"

# Environment variables whose values are secrets: provider keys and tokens.
SECRET_ENV_PATTERN = re.compile(
    r"(_API_KEY|_KEY|_TOKEN|_SECRET|_PASSWORD|_PASSWD|_CREDENTIALS?)$|^(API_KEY|TOKEN|SECRET|PASSWORD)$", re.I
)

# Shorter values are too likely to be ordinary text ("yes", "1") to redact.
_MIN_SECRET_LENGTH = 8

def _raw_environ() -> Mapping[Any, Any] | None:
    """CPython's own mapping behind ``os.environ``: comparing it with a copy takes well under
    a microsecond, so every use can notice a key set a moment ago.  None elsewhere (then
    only the timed refresh applies)."""
    return getattr(os.environ, "_data", None)


def _forms(secret: str) -> set[str]:
    """The secret as it may appear in text: raw, and escaped inside JSON strings."""
    forms = {secret}
    for ensure_ascii in (False, True):
        escaped = json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]
        forms.add(escaped)
    return forms


class Redactor:
    """Replaces known secret values in strings, nested JSON-like data and events.

    ``secrets`` are extra values to treat as secret.  With
    ``from_environment`` (the default) every environment variable whose name
    looks like a credential (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET`` ...) is a
    secret, and so is every such entry of the ``.env`` file in the working
    directory (``dotenv_path`` to read another).  A change to ``os.environ``
    is seen at the next use (a key set in one line is redacted in the next);
    the ``.env`` file is read again at most every ``refresh_interval``
    seconds; ``refresh()`` re-reads both at once.
    """

    def __init__(
        self,
        secrets: Iterable[str] = (),
        *,
        from_environment: bool = True,
        dotenv_path: str | Path | None = None,
        refresh_interval: float = 1.0,
    ) -> None:
        self._configured: set[str] = set()
        self._from_environ: set[str] = set()
        self._from_dotenv: set[str] = set()
        # (pattern, forms) swapped as one, so a reader on another thread never
        # pairs a new pattern with old forms.
        self._compiled: tuple[re.Pattern[str] | None, tuple[str, ...]] = (None, ())
        self._stale = True
        self._lock = threading.Lock()
        # One refresh at a time: a slow read of .env on one thread must not publish
        # its older list over the newer one another thread has just read.
        self._refresh_lock = threading.Lock()
        self.from_environment = from_environment
        self.dotenv_path = Path(dotenv_path) if dotenv_path is not None else None
        self.refresh_interval = refresh_interval
        self._refreshed_at = float("-inf")
        self._environ_seen: dict[Any, Any] | None = None  # os.environ as of the last refresh
        for secret in secrets:
            self.add(secret)
        if from_environment:
            self.refresh()

    # -- what is secret ----------------------------------------------------

    def add(self, secret: str | None) -> None:
        """Treat ``secret`` as a secret from now on (values under 8 characters are ignored)."""
        if not isinstance(secret, str):
            if secret is not None:
                raise TypeError(f"a secret must be a string, not {type(secret).__name__}")
            return
        secret = secret.strip()
        if len(secret) >= _MIN_SECRET_LENGTH and secret not in self._configured:
            with self._lock:
                self._configured.add(secret)
                self._stale = True

    def add_from_environment(self, environ: Mapping[str, str] | None = None) -> None:
        """Add the values of credential-named variables of ``environ`` (default: ``os.environ``)."""
        found = set(self._secret_values(environ if environ is not None else os.environ))
        with self._lock:
            self._configured |= found
            self._stale = True

    @staticmethod
    def _secret_values(environ: Mapping[str, str]) -> Iterable[str]:
        for name, value in environ.items():
            if value and SECRET_ENV_PATTERN.search(name):
                value = value.strip()
                if len(value) >= _MIN_SECRET_LENGTH:
                    yield value

    def refresh(self) -> None:
        """Read the environment and the ``.env`` file again (when ``from_environment``)."""
        self._refresh(dotenv=True)

    def _refresh(self, *, dotenv: bool) -> None:
        if not self.from_environment:
            self._refreshed_at = time.monotonic()
            return
        with self._refresh_lock:
            raw = _raw_environ()
            seen = dict(raw) if raw is not None else None  # before reading: a later change is seen next time
            from_environ = set(self._secret_values(os.environ))
            from_dotenv = set(self._secret_values(self._dotenv())) if dotenv else self._from_dotenv
            with self._lock:
                self._environ_seen = seen
                if dotenv:
                    self._refreshed_at = time.monotonic()
                if from_environ != self._from_environ or from_dotenv != self._from_dotenv:
                    self._from_environ, self._from_dotenv = from_environ, from_dotenv
                    self._stale = True

    def _dotenv(self) -> Mapping[str, str]:
        # The LLM layer reads keys from ./.env without copying them into the
        # environment, so the redactor has to read the same file.
        from ..llm.config import read_dotenv

        path = self.dotenv_path if self.dotenv_path is not None else Path.cwd() / ".env"
        try:
            return read_dotenv(path)
        except (OSError, ValueError) as exc:
            log.warning("could not read %s for secrets to redact: %s", path, type(exc).__name__)
            return {}

    def _environment_changed(self) -> bool:
        raw = _raw_environ()
        return raw is not None and raw != self._environ_seen

    @property
    def secrets_count(self) -> int:
        """How many distinct secret values are known (never the values themselves)."""
        return len(self._configured | self._from_environ | self._from_dotenv)

    def _current(self) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
        if self.from_environment:
            if time.monotonic() - self._refreshed_at > self.refresh_interval:
                self._refresh(dotenv=True)
            elif self._environment_changed():
                self._refresh(dotenv=False)  # os.environ only: .env is read again when due
        if self._stale:
            with self._lock:
                forms: set[str] = set()
                for secret in self._configured | self._from_environ | self._from_dotenv:
                    forms |= _forms(secret)
                # Longest first, so a key that contains another is replaced whole.
                alternatives = sorted(forms, key=len, reverse=True)
                pattern = re.compile("|".join(re.escape(s) for s in alternatives)) if forms else None
                self._compiled = (pattern, tuple(alternatives))
                self._stale = False
        return self._compiled

    @property
    def longest_secret(self) -> int:
        """Length of the longest form of a known secret (0 if none): how much streamed text
        to hold back so that a secret split across pieces is still caught whole."""
        forms = self._current()[1]
        return len(forms[0]) if forms else 0

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """One regular expression matching every known secret, or None when there are none."""
        return self._current()[0]

    def __repr__(self) -> str:  # never the values
        return f"<Redactor {self.secrets_count} secrets, from_environment={self.from_environment}>"

    # -- redacting ---------------------------------------------------------

    def text(self, value: str) -> str:
        """``value`` with every known secret replaced by ``[REDACTED]``."""
        pattern, forms = self._current()
        if pattern is None or not value:
            return value
        # Plain substring tests are far cheaper than the regex on text that
        # holds no secret, which is nearly all text.
        if not any(form in value for form in forms):
            return value
        return pattern.sub(REDACTED, value)

    def contains_secret(self, value: str) -> bool:
        """Whether ``value`` holds a known secret."""
        _, forms = self._current()
        return bool(value) and any(form in value for form in forms)

    def data(self, value: Any) -> Any:
        """Redact every string inside dicts, lists and tuples (keys included)."""
        if self.pattern is None:
            return value
        return self._data(value)

    def _data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._data(k): self._data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._data(v) for v in value)
        return value

    def json(self, message: Message) -> str:
        """The message's JSON text (``to_json()``) with secret values and credential fields blanked."""
        return self.json_text(message.to_json())

    def json_text(self, text: str) -> str:
        """Redact JSON text: secret values anywhere, and values of credential-named keys."""
        text = self.text(text)
        if json_names_secret(text):
            redacted = redact_secrets(json.loads(text))
            text = json.dumps(redacted, ensure_ascii=False)
        return text

    def record(self, message: Message) -> dict[str, Any]:
        """The message's ``to_record()`` dict, redacted."""
        return json.loads(self.json(message))

    def message(self, message: Message) -> Message:
        """``message`` itself when it holds no secret, else a redacted copy of the same class.

        A copy that no longer validates as its class (a secret inside a field
        with a fixed format) comes back as an ``UnknownEvent`` holding the
        redacted fields, so nothing secret is ever returned.
        """
        return self.message_and_json(message)[0]

    def message_and_json(self, message: Message) -> tuple[Message, str]:
        """``message(message)`` together with its redacted JSON text, serialising only once."""
        original = message.to_json()
        text = self.json_text(original)
        if text == original:
            return message, original
        redacted = self._rebuild(text)
        return redacted, redacted.to_json()

    @staticmethod
    def _rebuild(text: str) -> Message:
        from pydantic import ValidationError

        from ..store import UnknownEvent

        record = json.loads(text)
        try:
            return Message.from_record(record)
        except (ValidationError, TypeError) as exc:
            log.warning(
                "a redacted %s no longer validates (%s); keeping it as an UnknownEvent",
                record.get("type"),
                type(exc).__name__,
            )
            return UnknownEvent(
                id=record.get("id"),
                timestamp=record.get("timestamp"),
                session_id=record.get("session_id"),
                metadata=record.get("metadata") or {},
                stored_type=str(record.get("type")),
                payload=record,
            )
