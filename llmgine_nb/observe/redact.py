"""Keep secrets out of everything persisted, exported or displayed.

The redactor now lives in ``llmgine_nb.secrets`` (used by every layer, the
engine included, without importing the observers); this import path stays
for code written against it.

    from llmgine_nb.observe.redact import Redactor, REDACTED
"""

from __future__ import annotations

from ..secrets import MARKER, Redactor

__all__ = ["Redactor", "REDACTED"]

#: The one marker a hidden secret is replaced by (``llmgine_nb.secrets.MARKER``).
REDACTED = MARKER
