"""Routing with litellm's own ``Router``: aliases, retries with backoff, fallbacks, a timeout.

    llm = RoutedLLM(
        {"fast": "openai/gpt-4o-mini", "smart": "anthropic/claude-sonnet-4-5"},
        default="smart",
        fallbacks={"smart": ["fast"]},
        num_retries=2,
        timeout=30,
        bus=bus,
    )
    await llm.complete(messages)                 # the default alias
    await llm.complete(messages, model="fast")   # another alias

litellm's Router does the work (which errors to retry, backoff, fallback
order).  We only make it visible: a ``CustomLogger`` registered once in
``litellm.callbacks`` hears each attempt start (``async_pre_call_deployment_hook``)
and fail (``async_log_failure_event``, which the Router awaits before it
decides to retry) and turns that into ``LLMCallFailed(will_retry=True)``,
``LLMRetry`` and ``LLMFallback`` events of the same call.  The call is found
by the ``llmgine_call_id`` we put in the request's metadata.

A failed attempt is announced at once when a retry is certain (the error is
retryable and retries are left); otherwise it is held until the next attempt
starts (then it was retried, or fell back) or the call ends (then the final
``LLMCallFailed(will_retry=False)`` reports it).  So every failed attempt is
one ``LLMCallFailed``, and exactly the last one says ``will_retry=False``.
When every model failed, the error raised is the last attempt's (litellm
would re-raise the first model's, hiding why the fallback failed).

litellm (seconds to import) loads only for a route that needs it.  An alias
with no fallbacks that points at an OpenAI model or OpenAI-compatible server
(``through_openai_sdk``), or at the offline model, is served by that client
itself (``direct_target``), retried by ``retry.py`` (``num_retries`` + 1
tries), with the same events under the alias's name.  Fallbacks, other
providers, litellm's own settings (``mock_response`` ...) or
``router_settings`` go through the Router.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..chat import ToolCall
from ._litellm import aload_litellm, load_litellm
from .base import BaseLLM, CallRecorder, ModelRequest, RawReply, StreamDelta, StreamEnd, public_settings
from .blocking import check_real_call
from .config import LITELLM_ONLY_SETTINGS, OFFLINE_MODEL, Settings, direct_target, key_in_use, provider_of
from .errors import LLMError, ModelConfigError, from_exception
from .events import LLMFallback, LLMRetry
from .litellm_client import reply_from_response, stream_pieces, streams_usage
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ..bus import MessageBus

__all__ = ["RoutedLLM", "CALL_ID_KEY"]

log = logging.getLogger("llmgine_nb.llm.router")

#: The metadata key that ties litellm's callbacks back to our call.
CALL_ID_KEY = "llmgine_call_id"


class _RoutedCall:
    """What the bridge knows about one routed call in flight."""

    __slots__ = ("recorder", "group", "deployment", "pending", "announced", "attempts", "last_error")

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder
        self.group: str = recorder.model
        self.deployment: str | None = None
        self.pending: LLMError | None = None
        self.announced = False
        self.attempts = 0
        self.last_error: LLMError | None = None

    async def attempt_starting(self, deployment: str | None, group: str | None) -> None:
        recorder = self.recorder
        group = group or self.group
        self.attempts += 1
        if self.attempts > 1:
            error = self.pending or self.last_error
            if self.pending is not None:
                await recorder.failed(self.pending, will_retry=True, model=self.deployment)
            recorder.attempt = self.attempts
            kind = error.kind if error else "other"
            message = str(error) if error else ""
            if group != self.group:
                await recorder.publish(
                    LLMFallback(
                        call_id=recorder.call_id,
                        model=group,
                        from_model=self.group,
                        to_model=group,
                        error_kind=kind,
                        message=message,
                    )
                )
            elif not self.announced:
                await recorder.publish(
                    LLMRetry(
                        call_id=recorder.call_id, model=group, attempt=self.attempts, error_kind=kind, message=message
                    )
                )
        self.pending = None
        self.announced = False
        self.group = group
        self.deployment = deployment

    def final_error(self, exc: BaseException) -> LLMError:
        """The error the call ends with: the last attempt's own (litellm re-raises the first
        model's error after failed fallbacks, which would hide why the fallback failed)."""
        if self.pending is not None and self.attempts > 1:
            return self.pending
        return from_exception(exc, model=self.deployment)

    async def attempt_failed(self, exc: BaseException | None, attempted: Any, max_retries: Any) -> None:
        error = from_exception(exc or RuntimeError("unknown error"), model=self.deployment)
        self.last_error = error
        retry_certain = (
            error.retryable
            and isinstance(attempted, int)
            and isinstance(max_retries, int)
            and attempted < max_retries
        )
        if not retry_certain:
            self.pending = error
            return
        self.pending = None
        if self.announced:
            return  # litellm reported the same failed attempt twice
        self.announced = True
        recorder = self.recorder
        await recorder.failed(error, will_retry=True, model=self.deployment)
        await recorder.publish(
            LLMRetry(
                call_id=recorder.call_id,
                model=self.group,
                attempt=self.attempts + 1,
                error_kind=error.kind,
                message=str(error),
            )
        )


# call id -> the call in flight; entries live only while the call runs.
_in_flight: dict[str, _RoutedCall] = {}
_bridge: Any = None


def _metadata_call(metadata: Any) -> _RoutedCall | None:
    if isinstance(metadata, Mapping):
        call_id = metadata.get(CALL_ID_KEY)
        if isinstance(call_id, str):
            return _in_flight.get(call_id)
    return None


def _install_bridge() -> None:
    """Register (once) the litellm callback that turns Router attempts into our events."""
    global _bridge
    if _bridge is not None:
        return
    litellm = load_litellm()
    from litellm.integrations.custom_logger import CustomLogger

    class BusBridge(CustomLogger):
        """Hears litellm's per-attempt hooks and forwards them to the call's bus."""

        async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> None:
            metadata = kwargs.get("metadata")
            routed = _metadata_call(metadata)
            if routed is None or not isinstance(metadata, Mapping):
                return None
            try:
                await routed.attempt_starting(kwargs.get("model"), metadata.get("model_group"))
            except Exception:  # never break litellm's call because an event could not be made
                log.warning("could not report an attempt of call %s", routed.recorder.call_id, exc_info=True)
            return None

        async def async_log_failure_event(
            self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            metadata = (kwargs.get("litellm_params") or {}).get("metadata")
            routed = _metadata_call(metadata)
            if routed is None or not isinstance(metadata, Mapping):
                return
            try:
                await routed.attempt_failed(
                    kwargs.get("exception"), metadata.get("attempted_retries"), metadata.get("max_retries")
                )
            except Exception:  # see above
                log.warning("could not report a failure of call %s", routed.recorder.call_id, exc_info=True)

    _bridge = BusBridge()
    litellm.callbacks.append(_bridge)


# Per-call settings that only the Router (litellm) understands.
_ROUTER_ONLY_SETTINGS = LITELLM_ONLY_SETTINGS | {"metadata"}


def _deployment(alias: str, target: str | Mapping[str, Any], api_base: str | None, config: Settings) -> dict[str, Any]:
    params: dict[str, Any] = {"model": target} if isinstance(target, str) else dict(target)
    if "model" not in params:
        raise ModelConfigError(f"The alias {alias!r} needs a 'model' (a litellm model string such as openai/gpt-4o-mini)")
    if api_base and "api_base" not in params:
        params["api_base"] = api_base
    if "api_key" not in params:
        key = config.api_key(provider_of(params["model"]))
        if key is None and params.get("api_base") and provider_of(params["model"]) == "openai":
            key = "no-key-needed"  # OpenAI-compatible local servers take no key; the SDK wants one
        if key is not None:
            params["api_key"] = key
    key_in_use(params.get("api_key"))  # explicit or found: every redactor hides it
    params.setdefault("max_retries", 0)  # the Router retries, visibly; not the SDK underneath
    return {"model_name": alias, "litellm_params": params}


class RoutedLLM(BaseLLM):
    """Models behind aliases, with retries and fallbacks by litellm's ``Router``.

    ``models`` maps alias -> litellm model string, or -> litellm params
    (``{"model": ..., "api_base": ..., "api_key": ...}``).  ``fallbacks``
    maps an alias to the aliases to try, in order, when it fails.  Other
    keyword arguments of ``litellm.Router`` go in ``router_settings``
    (cooldowns are off by default: with one deployment per alias a cooldown
    would only turn one failure into several).
    """

    def __init__(
        self,
        models: Mapping[str, str | Mapping[str, Any]],
        *,
        default: str | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        num_retries: int = 2,
        timeout: float | None = None,
        retry_after: float = 0,
        bus: MessageBus | None = None,
        api_base: str | None = None,
        config: Settings | None = None,
        router_settings: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        if not models:
            raise ModelConfigError("RoutedLLM needs at least one alias, e.g. {'fast': 'openai/gpt-4o-mini'}")
        default = default or next(iter(models))
        if default not in models:
            raise ModelConfigError(f"The default alias {default!r} is not one of the aliases {sorted(models)}")
        super().__init__(default, bus=bus, **settings)
        self._config = config = config or Settings()
        api_base = config.value("LLMGINE_API_BASE", api_base)
        self._model_list = [_deployment(alias, target, api_base, config) for alias, target in models.items()]
        self.aliases: dict[str, str] = {d["model_name"]: d["litellm_params"]["model"] for d in self._model_list}
        self.fallbacks = {alias: list(targets) for alias, targets in (fallbacks or {}).items()}
        for alias, targets in self.fallbacks.items():
            unknown = [t for t in [alias, *targets] if t not in self.aliases]
            if unknown:
                raise ModelConfigError(
                    f"Fallbacks name unknown aliases {unknown}; the aliases are {sorted(self.aliases)}"
                )
        self.num_retries = num_retries
        self.timeout = timeout
        self.retry_after = retry_after
        self.router_settings = dict(router_settings or {})
        self.provider = provider_of(self.aliases[default])
        self._router: Any = None
        # Aliases served by a client of ours (no fallbacks, no Router options): alias -> route params.
        self._direct_routes: dict[str, dict[str, Any]] = {}
        if not self.router_settings:
            for deployment in self._model_list:
                alias, params = deployment["model_name"], deployment["litellm_params"]
                if not self.fallbacks.get(alias) and direct_target(params, config) is not None:
                    self._direct_routes[alias] = params
        self._direct_clients: dict[str, BaseLLM] = {}
        self._direct_retry = RetryPolicy(tries=num_retries + 1)

    def __repr__(self) -> str:
        return f"<RoutedLLM default={self.model!r} aliases={self.aliases} fallbacks={self.fallbacks}>"

    def _provider_for(self, model: str) -> str | None:
        return provider_of(self.aliases.get(model, model))

    def _public_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        alias = settings.get("model", self.model)
        shown = {
            "routes_to": self.aliases.get(alias),
            "fallbacks": self.fallbacks.get(alias),
            "num_retries": self.num_retries,
            "timeout": self.timeout,
            **settings,
        }
        return public_settings(shown)

    @property
    def router(self) -> Any:
        """The ``litellm.Router`` (built on first use)."""
        if self._router is None:
            litellm = load_litellm()
            _install_bridge()
            options: dict[str, Any] = {
                "model_list": self._model_list,
                "num_retries": self.num_retries,
                "retry_after": self.retry_after,
                "fallbacks": [{alias: targets} for alias, targets in self.fallbacks.items()],
                "disable_cooldowns": True,
            }
            if self.timeout is not None:
                options["timeout"] = self.timeout
                options["stream_timeout"] = self.timeout
            options.update(self.router_settings)
            self._router = litellm.Router(**options)
        return self._router

    def _direct(self, alias: str, settings: Iterable[str] = ()) -> BaseLLM | None:
        """The client of ours that serves ``alias`` (made on first use), or None: the Router does."""
        params = self._direct_routes.get(alias)
        if params is None or not _ROUTER_ONLY_SETTINGS.isdisjoint(settings):
            return None
        client = self._direct_clients.get(alias)
        if client is None:
            if params["model"] == OFFLINE_MODEL:
                from .scripted import ScriptedLLM

                client = ScriptedLLM()
            else:
                from .openai_client import OpenAIClient

                client = OpenAIClient(
                    params["model"], api_base=params.get("api_base"), api_key=params.get("api_key"),
                    timeout=self.timeout, config=self._config,
                )
            self._direct_clients[alias] = client
        return client

    def _direct_for(self, request: ModelRequest) -> BaseLLM | None:
        return self._direct(request.call.model, request.settings)

    def _retry_policy(self, request: ModelRequest) -> RetryPolicy | None:
        # The Router retries what it sends; what a client of ours sends, we retry.
        return self._direct_retry if self._direct_for(request) is not None else None

    async def _ensure_ready(self) -> None:
        """Load what the default alias needs: its client's library, or litellm for the Router."""
        direct = self._direct(self.model)
        await (direct._ensure_ready() if direct is not None else aload_litellm())

    def _interrupted_end(self, request: ModelRequest, end: StreamEnd, text: str, calls: list[ToolCall]) -> StreamEnd:
        direct = self._direct_for(request)
        if direct is None:
            return end
        return direct._interrupted_end(request.to(self.aliases[request.call.model]), end, text, calls)

    def _supports_response_schema(self) -> bool:
        direct = self._direct(self.model)
        if direct is not None:
            return direct._supports_response_schema()
        litellm = load_litellm()
        try:
            return bool(litellm.supports_response_schema(model=self.aliases[self.model]))
        except Exception as exc:  # unknown model: rely on the instruction alone
            log.debug("no response-schema information for %s: %s", self.model, type(exc).__name__)
            return False

    def _prepare(self, request: ModelRequest) -> dict[str, Any]:
        call, settings = request.call, request.settings
        if "mock_response" not in settings:
            for deployment in self._model_list:
                if deployment["model_name"] in (call.model, *self.fallbacks.get(call.model, ())):
                    params = deployment["litellm_params"]
                    if "mock_response" not in params:  # litellm's test replies never leave the process
                        check_real_call(params["model"], params.get("api_base"))
        metadata = dict(settings.get("metadata") or {})
        metadata[CALL_ID_KEY] = call.call_id
        kwargs = dict(settings)
        kwargs.update(model=call.model, messages=[m.to_openai() for m in request.messages], metadata=metadata)
        if request.tools:
            kwargs["tools"] = request.tools
        return kwargs

    def _known_alias(self, request: ModelRequest) -> str:
        alias = request.call.model
        if alias not in self.aliases:
            raise ModelConfigError(f"{alias!r} is not an alias of this router; the aliases are {sorted(self.aliases)}")
        return alias

    async def _request(self, request: ModelRequest) -> RawReply:
        target = self.aliases[self._known_alias(request)]
        direct = self._direct_for(request)
        if direct is not None:
            await direct._ensure_ready()
            try:
                reply = await direct._request(request.to(target))
            except Exception as exc:
                raise from_exception(exc, model=target, provider=provider_of(target)) from exc
            reply.end.model = target
            return reply
        kwargs = self._prepare(request)
        await aload_litellm()
        call = request.call
        routed = _in_flight[call.call_id] = _RoutedCall(call)
        try:
            response = await self.router.acompletion(**kwargs)
        except Exception as exc:
            raise routed.final_error(exc) from exc
        finally:
            del _in_flight[call.call_id]
        model = routed.deployment or target
        reply = reply_from_response(response, model)
        reply.end.model = model
        return reply

    async def _request_stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta | StreamEnd]:
        target = self.aliases[self._known_alias(request)]
        direct = self._direct_for(request)
        if direct is not None:
            await direct._ensure_ready()
            try:
                async for piece in direct._request_stream(request.to(target)):
                    if isinstance(piece, StreamEnd):
                        piece.model = target
                    yield piece
            except Exception as exc:
                raise from_exception(exc, model=target, provider=provider_of(target)) from exc
            return
        kwargs = self._prepare(request)
        await aload_litellm()
        kwargs["stream"] = True
        if "stream_options" not in kwargs and "mock_response" not in kwargs and streams_usage(target):
            kwargs["stream_options"] = {"include_usage": True}
        call = request.call
        routed = _in_flight[call.call_id] = _RoutedCall(call)
        try:
            try:
                stream = await self.router.acompletion(**kwargs)
            except Exception as exc:
                raise routed.final_error(exc) from exc
            model = routed.deployment or target
            async for piece in stream_pieces(stream, model, request.messages):
                if isinstance(piece, StreamEnd):
                    piece.model = model
                yield piece
        finally:
            _in_flight.pop(call.call_id, None)
