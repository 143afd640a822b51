"""Commands the chat engine answers: every action a front end can take.

A front end (a notebook cell, a widget, a web page, a terminal, Discord)
never calls the engine: it sends one of these and renders the events.
Each survives ``to_json()`` / ``Message.from_json()``: a structured-output
class travels as its JSON schema and a name the receiver resolves.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ..chat import ImageRef
from ..messages import Command

__all__ = [
    "SendMessage",
    "RetryTurn",
    "CancelTurn",
    "DecideApproval",
    "AnswerQuestion",
    "SwitchModel",
    "ResetSession",
    "ForkSession",
    "ForgetMessage",
    "EditMessage",
    "PinMessage",
    "resolve_model_name",
]


# Structured-output classes this process has put in a command, by name (the newest of a name wins,
# as a re-run notebook cell redefines it).  Weak: a class nobody uses any more is forgotten.
_KNOWN_MODELS: weakref.WeakValueDictionary[str, type[BaseModel]] = weakref.WeakValueDictionary()


class SendMessage(Command):
    """Start a turn with a user message; the result is the turn's ``TurnResult``.

    ``response_model`` (a pydantic class, for structured output; anything
    else is refused with a ``TypeError`` that says to wrap it in one) is kept in
    memory only; what crosses a wire is ``response_schema`` (its JSON schema)
    and ``response_model_name`` (``module.QualName``), which the receiving
    engine resolves to the class (``output_type()``).
    """

    text: str
    images: list[ImageRef] = Field(default_factory=list)  # stored already (Store.put_image): sent by reference
    model: str | None = None  # this turn only; SwitchModel changes the default
    system: str | None = None  # replaces the session's system prompt for this turn
    use_tools: bool = True
    response_model: Any = Field(default=None, exclude=True)
    response_schema: dict[str, Any] | None = None
    response_model_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _describe_response_model(cls, data: Any) -> Any:
        if isinstance(data, dict):
            model = data.get("response_model")
            if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
                # Refused rather than ignored: the turn would quietly come back as plain text.
                raise TypeError(
                    f"response_model must be a pydantic model class (a subclass of pydantic.BaseModel); got {model!r}. "
                    "For a list, a dict or another type, wrap it in a model, e.g. "
                    "class Answer(BaseModel): items: list[City], and pass response_model=Answer"
                )
            if model is not None:
                name = data.get("response_model_name") or f"{model.__module__}.{model.__qualname__}"
                _KNOWN_MODELS[name] = model
                data = {
                    **data,
                    "response_schema": data.get("response_schema") or model.model_json_schema(),
                    "response_model_name": name,
                }
        return data

    def output_type(self) -> type[BaseModel] | None:
        """The structured-output class: the one given, else the one ``response_model_name`` names."""
        if isinstance(self.response_model, type) and issubclass(self.response_model, BaseModel):
            return self.response_model
        if self.response_model_name:
            return resolve_model_name(self.response_model_name)
        return None


def resolve_model_name(name: str) -> type[BaseModel]:
    """The pydantic class called ``name`` (``module.QualName``), from a module this process has loaded.

    A class this process sent a command with is known by its name (also a
    class defined inside a function or a notebook cell); otherwise only
    modules already imported (or inside a package already imported) are
    looked in, so a command from elsewhere cannot make this process import
    and run arbitrary code.
    """
    known = _KNOWN_MODELS.get(name)
    if known is not None:
        return known
    parts = name.split(".")
    target: Any = None
    for split in range(len(parts) - 1, 0, -1):  # the longest module name first: "pkg.mod" + "Outer.Inner"
        module = _loaded_module(".".join(parts[:split]))
        if module is not None:
            target = module
            for attribute in parts[split:]:
                target = getattr(target, attribute, None)
            break
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        raise LookupError(
            f"the structured-output class {name!r} is not known to this process; "
            "import the module that defines it where the engine runs"
        )
    return target


def _loaded_module(name: str) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    if name.partition(".")[0] not in sys.modules:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class RetryTurn(Command):
    """Run the session's last user message again (after a failed or cancelled turn); result: ``TurnResult``."""


class CancelTurn(Command):
    """Cancel the running turn; the partial reply is kept, marked interrupted."""

    reason: str = "cancelled by the user"


class DecideApproval(Command):
    """Answer a pending approval.

    ``call_id``: the display id shown on the card (or the tool call's id, or
    6+ characters of its unique part).  ``args_hash``: the hash of the
    arguments the person saw (``ApprovalRequested.args_hash``); the call runs
    only if it matches.  ``decided_by`` reaches ``ApprovalDecided`` and the store.
    """

    call_id: str
    decision: Literal["approve", "deny", "edit", "always"]
    message: str | None = None  # for deny: told to the model
    arguments: dict[str, Any] | None = None  # for edit: the new arguments
    decided_by: str = "user"
    args_hash: str | None = None


class AnswerQuestion(Command):
    """Answer a tool's question: ``True``/``False`` for a confirmation, an option (or None) for a choice.

    ``question_id``: the display id shown with the question, or its id.
    """

    question_id: str
    answer: Any = None
    decided_by: str = "user"


class SwitchModel(Command):
    model: str


class ResetSession(Command):
    """Forget the history of the session (it is kept on disk under its old id)."""


class ForkSession(Command):
    """Continue in a new session copied up to ``at_message_id`` (default: all)."""

    at_message_id: str | None = None
    name: str | None = None


# -- editing the dialog: what the model is sent from now on (the store keeps every change) --------


class ForgetMessage(Command):
    """Leave the exchange holding ``message_id`` (a user message and the replies to it) out of what the model
    is sent; ``forgotten=False`` brings it back.  It stays in the history.  The result: the ids changed."""

    message_id: str  # an id, or a unique prefix of one
    forgotten: bool = True


class EditMessage(Command):
    """Replace the text of a past message; the model sees the new text from the next turn on."""

    message_id: str
    text: str


class PinMessage(Command):
    """Pin (or unpin) a message: a pinned message is sent on every turn, however long the history grows."""

    message_id: str
    pinned: bool = True
