"""The chat engine: the turn loop as commands in and events out.

    engine = await ChatEngine(bus, store=store, tools=tools, model="scripted").start()
    result = await engine.send("hello")
"""

from .budget import Budget
from .chat_engine import ChatEngine
from .commands import (
    AnswerQuestion,
    CancelTurn,
    DecideApproval,
    EditMessage,
    ForgetMessage,
    ForkSession,
    PinMessage,
    ResetSession,
    RetryTurn,
    SendMessage,
    SwitchModel,
)
from .events import (
    BudgetExceeded,
    ContextCompiled,
    MessageEdited,
    MessagePinned,
    MessagesForgotten,
    ModelSwitched,
    RequestReplayed,
    SentPart,
    SessionForked,
    SessionReset,
    StepLimitReached,
    TurnCancelled,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from .turn import TurnResult

__all__ = [
    "AnswerQuestion",
    "RetryTurn",
    "Budget",
    "BudgetExceeded",
    "CancelTurn",
    "ChatEngine",
    "ContextCompiled",
    "DecideApproval",
    "EditMessage",
    "ForgetMessage",
    "ForkSession",
    "MessageEdited",
    "MessagePinned",
    "MessagesForgotten",
    "PinMessage",
    "ModelSwitched",
    "RequestReplayed",
    "ResetSession",
    "SendMessage",
    "SentPart",
    "SessionForked",
    "SessionReset",
    "StepLimitReached",
    "SwitchModel",
    "TurnCancelled",
    "TurnEvent",
    "TurnFailed",
    "TurnFinished",
    "TurnResult",
    "TurnStarted",
]
