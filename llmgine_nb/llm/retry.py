"""Retrying a model call that failed for a reason a later attempt may get past.

One layer owns retries.  For a single model (``LiteLLMClient``) it is this
one: the OpenAI SDK's and litellm's own retries underneath are switched off
(``max_retries=0``, ``num_retries=0``), so nothing is retried twice over.
For routed aliases (``RoutedLLM``) it is litellm's ``Router``
(``num_retries``), and this layer stays out of the way; an alias the router
serves without litellm is retried here, ``num_retries`` + 1 tries.

By default a call is tried up to 3 times when it was rate limited (429), the
server failed (5xx) or the connection failed or dropped before any of the
reply arrived.  Between tries it waits with exponential backoff and jitter,
or as long as the provider's ``Retry-After`` asks; no try starts after
``total_time`` seconds from the first.  Each retry is an ``LLMCallFailed``
(``will_retry=True``) and an ``LLMRetry`` event, so a cell can show it.  Not
retried: a bad or missing key, a bad request, a timeout (the caller chose
that limit), a stream that failed after text had arrived (that text is kept).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import LLMError

__all__ = ["RetryPolicy", "NO_RETRIES"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.  ``RetryPolicy(tries=1)`` never retries.

    ``tries``: attempts in all.  ``base_delay`` doubles each retry, up to
    ``max_delay``, with +-``jitter`` (a fraction) so that many clients do not
    retry in step.  A ``Retry-After`` from the provider replaces the backoff
    (up to ``max_retry_after``; longer than that, or past ``total_time``,
    and the call fails at once, saying how long the provider asked to wait).
    """

    tries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    total_time: float = 30.0
    max_retry_after: float = 20.0
    kinds: frozenset[str] = frozenset({"rate_limit", "connection", "server_error"})

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise ValueError("tries counts every attempt, the first included: it must be at least 1")
        if min(self.base_delay, self.max_delay, self.total_time, self.max_retry_after) < 0 or not 0 <= self.jitter < 1:
            raise ValueError("delays and times must be >= 0 and jitter a fraction between 0 and 1")

    def retries(self, error: LLMError) -> bool:
        """Whether this kind of failure is worth another try at all."""
        return error.kind in self.kinds

    def wait(self, error: LLMError, attempt: int, elapsed: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up now.

        ``attempt`` is the number of the attempt that just failed (1 for the
        first); ``elapsed`` the seconds since the first started.
        """
        if attempt >= self.tries or not self.retries(error) or error.interrupted:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            delay = error.retry_after
        else:
            backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = backoff * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 - not for secrets
        if elapsed + delay > self.total_time:
            return None
        return delay


NO_RETRIES = RetryPolicy(tries=1)
