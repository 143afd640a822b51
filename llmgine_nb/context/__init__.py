"""Context management: what the model is sent, within a token budget.

- ``ContextCompiler``: system prompt + memory + pinned messages + history ->
  the messages to send, with a ``ContextReport`` of tokens per part and what
  was dropped or summarised.
- ``TokenCounter``: litellm's counts for real models (cached per message), a
  quick estimate for the offline ``scripted`` model.
- ``NotebookContext``: ``{name}`` interpolation, ``In[n]``/``Out[n]`` cell
  references and DataFrame summaries from a kernel's namespace.
"""

from __future__ import annotations

from .compiler import (
    CompiledContext,
    ContextCompiler,
    ContextReport,
    InMemorySummaries,
    Summariser,
    SummaryStore,
)
from .notebook import NotebookContext, describe_value, summarise_dataframe
from .tokens import TokenCounter, estimate_text_tokens, is_offline_model

__all__ = [
    "CompiledContext",
    "ContextCompiler",
    "ContextReport",
    "InMemorySummaries",
    "NotebookContext",
    "Summariser",
    "SummaryStore",
    "TokenCounter",
    "describe_value",
    "estimate_text_tokens",
    "is_offline_model",
    "summarise_dataframe",
]
