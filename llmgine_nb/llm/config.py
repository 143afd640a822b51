"""Which model to use, where it lives and which keys are there.

Every setting is looked up in order: the explicit argument, then the
environment (``LLMGINE_MODEL``, ``LLMGINE_API_BASE``, ``OPENAI_API_KEY`` ...),
then the ``.env`` file (read with python-dotenv; it never overrides the real
environment and is not copied into it).  The ``.env`` file is the working
directory's, found once as an absolute path the first time configuration
loads (``llmgine_nb.secrets.dotenv_path()``): a later ``%cd`` reads the same
file, and the redactor knows its keys all along.

API keys are never logged, stored or shown: ``key_status()`` reports which
providers have one, masked (``sk-...abcd``), and every key a model client
uses, from the environment, ``.env`` or an explicit ``api_key=``, is handed
to ``llmgine_nb.secrets.remember`` so that every redactor hides it.  When nothing is configured the
offline ``scripted`` model is used, and ``choose_model()`` says so in a plain
sentence with one line on how to configure a real model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..replies import is_on
from ..secrets import dotenv_path as default_dotenv_path
from ..secrets import mask_key, read_dotenv, remember

__all__ = [
    "PROVIDER_KEYS",
    "DEFAULT_MODELS",
    "OFFLINE_MODEL",
    "ConfigSource",
    "ModelChoice",
    "Settings",
    "mask_key",
    "key_status",
    "choose_model",
    "provider_of",
    "DEFAULT_ALIASES",
    "ALIAS_SETTINGS",
    "alias_help",
    "resolve_aliases",
    "read_dotenv",
    "key_in_use",
    "endpoint_of",
    "USE_LITELLM",
    "LITELLM_ONLY_SETTINGS",
    "through_openai_sdk",
    "direct_target",
]

OFFLINE_MODEL = "scripted"

#: Provider (litellm prefix) -> environment variables that may hold its key, first wins.
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "azure": ("AZURE_API_KEY",),
}

#: The aliases ``fast`` and ``smart`` for each provider (all priced in litellm's cost map).
DEFAULT_ALIASES: dict[str, dict[str, str]] = {
    "openai": {"fast": "openai/gpt-4o-mini", "smart": "openai/gpt-4.1"},
    "anthropic": {"fast": "anthropic/claude-haiku-4-5", "smart": "anthropic/claude-sonnet-4-5"},
    "gemini": {"fast": "gemini/gemini-2.5-flash", "smart": "gemini/gemini-2.5-pro"},
    "mistral": {"fast": "mistral/mistral-small-latest", "smart": "mistral/mistral-large-latest"},
    "deepseek": {"fast": "deepseek/deepseek-chat", "smart": "deepseek/deepseek-reasoner"},
}

#: Set (1, true, on) to speak to OpenAI models through litellm instead of the openai SDK.
USE_LITELLM = "LLMGINE_USE_LITELLM"

#: Settings that mean something to litellm only (not to an OpenAI server, nor to the offline model).
LITELLM_ONLY_SETTINGS = frozenset({"mock_response", "custom_llm_provider", "fallbacks", "num_retries", "drop_params"})

#: The built-in aliases and the setting that points each at a model of your choice.
ALIAS_SETTINGS: dict[str, str] = {"fast": "LLMGINE_FAST_MODEL", "smart": "LLMGINE_SMART_MODEL"}

#: The model used when only a provider's key is configured: its ``fast`` alias.
DEFAULT_MODELS: dict[str, str] = {provider: aliases["fast"] for provider, aliases in DEFAULT_ALIASES.items()}

ConfigSource = Literal["argument", "environment", ".env", "api key", "offline"]

_HOW_TO_CONFIGURE = (
    "To use a real model, set LLMGINE_MODEL (e.g. openai/gpt-4o-mini) and its key "
    "(e.g. OPENAI_API_KEY) in the environment or in a .env file."
)

# Bare model names litellm maps to a provider without a prefix.
_BARE_PREFIXES = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gemini"),
)


def provider_of(model: str) -> str | None:
    """The provider a litellm model string names (``anthropic/claude-...`` -> ``anthropic``)."""
    if model == OFFLINE_MODEL:
        return "scripted"
    if "/" in model:
        return model.split("/", 1)[0]
    for prefix, provider in _BARE_PREFIXES:
        if model.startswith(prefix):
            return provider
    return None


def through_openai_sdk(model: str, settings: Settings, call_settings: Iterable[str] = ()) -> bool:
    """Whether ``model`` is spoken to through the openai SDK rather than litellm (``call_settings``: the names given)."""
    if provider_of(model) != "openai" or not LITELLM_ONLY_SETTINGS.isdisjoint(call_settings):
        return False
    return not is_on(settings.get(USE_LITELLM)[0] or "")


# What a route may say and still be served without litellm: where the model is, and its key.
_DIRECT_PARAMS = frozenset({"model", "api_base", "api_key", "max_retries"})


def direct_target(target: str | Mapping[str, Any], settings: Settings) -> str | None:
    """The model a route (an alias's target) names when a client of ours serves it without litellm.

    That is the offline model, or a model spoken to through the openai SDK, with
    nothing but an address and a key beside it (anything else is litellm's to
    read); None when the route needs litellm.
    """
    params: Mapping[str, Any] = {"model": target} if isinstance(target, str) else target
    model = params.get("model")
    if not isinstance(model, str) or not _DIRECT_PARAMS.issuperset(params):
        return None
    return model if model == OFFLINE_MODEL or through_openai_sdk(model, settings) else None


def key_in_use(key: str | None) -> str | None:
    """``key`` as a model client is about to use it: from now on every redactor hides it."""
    remember(key)
    return key


def endpoint_of(
    settings: Settings, provider: str | None, api_base: str | None = None, api_key: str | None = None
) -> tuple[str | None, str | None]:
    """``(api_base, key)`` a client of ``provider`` uses: the arguments, else the settings.

    The address: ``api_base``, else ``LLMGINE_API_BASE``, else (for openai)
    ``OPENAI_BASE_URL`` / ``OPENAI_API_BASE`` (None: the provider's own).  An
    OpenAI-compatible server of one's own usually takes no key, but the SDK
    insists on one, so it gets a placeholder.  The key is remembered by every
    redactor from here on.
    """
    base = settings.value("LLMGINE_API_BASE", api_base)
    if base is None and provider == "openai":
        base = settings.value("OPENAI_BASE_URL") or settings.value("OPENAI_API_BASE")
    key = api_key or settings.api_key(provider)
    if key is None and base and provider == "openai" and "api.openai.com" not in base:
        key = "no-key-needed"
    return base, key_in_use(key)


class Settings:
    """The environment and the ``.env`` file, read once, looked up in that order."""

    def __init__(self, env: Mapping[str, str] | None = None, dotenv_path: str | Path | None = None) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.dotenv_path = Path(dotenv_path).absolute() if dotenv_path is not None else default_dotenv_path()
        self.dotenv: Mapping[str, str] = read_dotenv(self.dotenv_path)

    def get(self, name: str) -> tuple[str | None, ConfigSource | None]:
        """``(value, where it came from)``; empty values count as unset."""
        value = self.env.get(name)
        if value:
            return value, "environment"
        value = self.dotenv.get(name)
        if value:
            return value, ".env"
        return None, None

    def value(self, name: str, explicit: str | None = None) -> str | None:
        if explicit:
            return explicit
        return self.get(name)[0]

    def api_key(self, provider: str | None) -> str | None:
        """The key for ``provider`` from the environment or ``.env``, if any."""
        for name in PROVIDER_KEYS.get(provider or "", ()):
            value, _ = self.get(name)
            if value:
                return value
        return None

    def __repr__(self) -> str:  # never show values: some are keys
        return f"<Settings dotenv={str(self.dotenv_path)!r} ({len(self.dotenv)} entries)>"


def key_status(settings: Settings | None = None) -> dict[str, str | None]:
    """Which providers have a key: ``{"openai": "sk-...abcd", "anthropic": None, ...}`` (masked)."""
    settings = settings or Settings()
    return {provider: mask_key(settings.api_key(provider)) for provider in PROVIDER_KEYS}


@dataclass(frozen=True)
class ModelChoice:
    """The model to use, where that choice came from, and a notice for the user (or None)."""

    model: str
    source: ConfigSource
    notice: str | None = None

    @property
    def offline(self) -> bool:
        return self.model == OFFLINE_MODEL


def alias_help(alias: str | None = None) -> str:
    """One sentence on how the aliases are pointed at models (for notices and errors)."""
    which = f"'{alias}' is an alias: " if alias else ""
    return (
        f"{which}Point fast and smart at models with LLMGINE_FAST_MODEL and LLMGINE_SMART_MODEL "
        "(e.g. LLMGINE_FAST_MODEL=openai/gpt-4o-mini, in the environment or .env), or set a provider key "
        "such as OPENAI_API_KEY for that provider's own fast and smart models."
    )


def choose_model(
    model: str | None = None, settings: Settings | None = None, aliases: Mapping[str, Any] | None = None
) -> ModelChoice:
    """Pick the model: explicit, else ``LLMGINE_MODEL``, else a key's default, else offline.

    A built-in alias (``fast``, ``smart``) that points nowhere while no real
    model is configured at all is the offline model too, with a notice saying so:
    the README's examples run as written on a machine with no key.
    """
    settings = settings or Settings()
    if model:
        if model in ALIAS_SETTINGS and model not in resolve_aliases(aliases, settings):
            fallback = choose_model(None, settings)
            if fallback.offline:
                return ModelChoice(
                    OFFLINE_MODEL,
                    "offline",
                    f"No model is configured for the alias '{model}', so the offline model 'scripted' answers. "
                    + alias_help(),
                )
        return ModelChoice(model, "argument")
    configured, source = settings.get("LLMGINE_MODEL")
    if configured:
        return ModelChoice(configured, source or "environment")
    for provider, default in DEFAULT_MODELS.items():
        if settings.api_key(provider):
            env_name = PROVIDER_KEYS[provider][0]
            return ModelChoice(
                default,
                "api key",
                f"Using {default} because {env_name} is set; choose another model with LLMGINE_MODEL.",
            )
    return ModelChoice(
        OFFLINE_MODEL,
        "offline",
        "No model is configured, so the offline model 'scripted' answers (it echoes your prompt, and calls a tool when the prompt writes the call). " + _HOW_TO_CONFIGURE,
    )


def resolve_aliases(
    aliases: Mapping[str, Any] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Model aliases: explicit ones, then ``LLMGINE_FAST_MODEL`` / ``LLMGINE_SMART_MODEL``,
    then ``fast`` and ``smart`` of the first provider that has a key."""
    settings = settings or Settings()
    resolved: dict[str, Any] = {}
    for provider in PROVIDER_KEYS:
        if provider in DEFAULT_ALIASES and settings.api_key(provider):
            resolved.update(DEFAULT_ALIASES[provider])
            break
    for alias in ("fast", "smart"):
        configured, _ = settings.get(f"LLMGINE_{alias.upper()}_MODEL")
        if configured:
            resolved[alias] = configured
    resolved.update(aliases or {})
    return resolved
