"""What the two clients of a real model share: an address, a key, a timeout.

``LiteLLMClient`` and ``OpenAIClient`` both speak to a model at an address
(``api_base``, else the settings, else the provider's own) with a key (the
argument, else the environment or ``.env``), retry by ``retry.py`` and show
the same settings in ``LLMCallStarted``.  The key stays private: never in
``repr``, events or logs, and every redactor hides it (``config.endpoint_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import BaseLLM, public_settings
from .config import Settings, endpoint_of, provider_of
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["EndpointLLM"]


class EndpointLLM(BaseLLM):
    """A model behind an address and a key; subclasses say how a request is sent.

    A subclass that speaks to one provider only sets ``provider`` as a class
    attribute; otherwise the model string names it.
    """

    default_retry = RetryPolicy()

    def __init__(
        self,
        model: str,
        *,
        bus: MessageBus | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        config: Settings | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(model, bus=bus, **settings)
        self.provider = type(self).provider or provider_of(model)
        self.api_base, self.__api_key = endpoint_of(config or Settings(), self.provider, api_base, api_key)
        self.timeout = timeout

    def _api_key(self) -> str | None:
        """The key to send (None: let the library find or refuse one)."""
        return self.__api_key

    def __repr__(self) -> str:
        base = f", api_base={self.api_base!r}" if self.api_base else ""
        return f"<{type(self).__name__} model={self.model!r}{base}>"

    def _public_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        return public_settings({"api_base": self.api_base, "timeout": self.timeout, **settings})
