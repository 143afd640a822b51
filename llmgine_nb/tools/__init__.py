"""Tools: functions the model may call, verified and approved before they run.

    from llmgine_nb.tools import ToolManager, tool, ToolContext

    @tool(risk="write", permissions={"tasks:write"})
    def add_task(title: str, due: str | None = None) -> dict:
        '''Add a task to the board.

        Args:
            title: What to do, in a few words.
            due: ISO date it is due, if any.
        '''

    manager = ToolManager([add_task], bus=bus, grants={"tasks:write"})
    manager.schemas()                  # OpenAI tools format, for litellm
    results = await manager.execute(reply.tool_calls)

See ``manager.py`` for the steps every call goes through and ``events.py``
for the events they publish.
"""

from .approval import ApprovalDecision, Attachment, AutoApproval, MalformedDecision, parse_decision
from .commands import ChoiceRequest, ConfirmRequest, QuestionAnswer, RequestApproval, ToolQuestion
from .context import ToolContext
from .events import (
    ApprovalDecided,
    ApprovalExpired,
    ApprovalRequested,
    ChoiceRequested,
    ConfirmationRequested,
    QuestionAnswered,
    QuestionExpired,
    ToolArgumentsValidated,
    ToolCallRequested,
    ToolEvent,
    ToolFinished,
    ToolImpactAssessed,
    ToolPermissionChecked,
    ToolStarted,
    ToolValidationFailed,
)
from .manager import ToolManager
from .pending import DisplayIds, args_hash
from .python import python_tool, run_code
from .queue import ApprovalQueue, ArgumentsMismatch
from .results import ToolError, ToolOutput, ToolResult, ToolStatus
from .schema import ArgumentsInvalid
from .tool import DEFAULT_APPROVAL, ApprovalPolicy, Risk, Tool, ToolOptions, tool, tool_options

__all__ = [
    "ApprovalDecided",
    "ApprovalExpired",
    "ArgumentsMismatch",
    "ChoiceRequested",
    "ConfirmationRequested",
    "DisplayIds",
    "QuestionAnswer",
    "QuestionAnswered",
    "QuestionExpired",
    "args_hash",
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalQueue",
    "ApprovalRequested",
    "ArgumentsInvalid",
    "Attachment",
    "AutoApproval",
    "ChoiceRequest",
    "ConfirmRequest",
    "DEFAULT_APPROVAL",
    "MalformedDecision",
    "RequestApproval",
    "Risk",
    "Tool",
    "ToolArgumentsValidated",
    "ToolCallRequested",
    "ToolContext",
    "ToolError",
    "ToolEvent",
    "ToolFinished",
    "ToolImpactAssessed",
    "ToolManager",
    "ToolOptions",
    "ToolOutput",
    "ToolPermissionChecked",
    "ToolQuestion",
    "ToolResult",
    "ToolStarted",
    "ToolStatus",
    "ToolValidationFailed",
    "parse_decision",
    "python_tool",
    "run_code",
    "tool",
    "tool_options",
]
