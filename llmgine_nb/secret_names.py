"""Which names hold secrets: now part of ``llmgine_nb.secrets`` (this import path stays)."""

from __future__ import annotations

from .secrets import SECRET_NAME_HINTS, is_secret_name, json_names_secret, might_name_secret

__all__ = ["is_secret_name", "might_name_secret", "json_names_secret", "SECRET_NAME_HINTS"]
