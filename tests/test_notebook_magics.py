"""``%llmgine`` in a plain IPython shell (no kernel, no widgets): the text front end.

Each test runs cells, typed as a user types them, in a fresh
``InteractiveShell`` in a subprocess, and reads what the shell printed.
"""

from __future__ import annotations

import re

import pytest
import shell_harness
from IPython.core.error import UsageError
from shell_harness import section

from llmgine_nb.notebook.extension import keep_questions
from llmgine_nb.notebook.magics import SUBCOMMANDS, parse_prompt_options
from llmgine_nb.tools.pending import first_display_id

# The id the card shows for the scripted model's first call (call_1_0).
ID = first_display_id("call_1_0")

# After the harness's prelude: a destructive tool in the namespace, and the scripted model's helpers.
SETUP = '''
cell(\'\'\'
from llmgine_nb import tool
from llmgine_nb.llm import ScriptedLLM, ScriptedReply, call
from llmgine_nb.notebook import runtime
ran = []

@tool(risk="destructive")
def remove(path: str) -> str:
    """Remove a file.

    Args:
        path: The file to remove.
    """
    ran.append(path)
    return f"removed {path}"
\'\'\')
'''


def run_shell(script: str, tmp_path, stdin: str = "") -> str:
    return shell_harness.run_shell(script, tmp_path, setup=SETUP, stdin=stdin, timeout=120)


def test_a_turn_asks_for_approval_in_text_and_approve_by_id_runs_it(tmp_path):
    out = run_shell('''
        cell("runtime().use_llm(ScriptedLLM([ScriptedReply('Removing it.', [call('remove', path='a.txt')]), 'Done: a.txt is gone.']))")
        cell("%llmgine Please remove a.txt")
        until(lambda: runtime().pending())
        cell("print('ran so far:', ran)")
        cell("%llmgine pending")
        cell("%llmgine approve call_1")
        cell("%llmgine approve {ID}")
        until(lambda: runtime().last.done())
        cell("print('ran so far:', ran)")
    '''.replace("{ID}", ID), tmp_path)
    asked = out[out.index("### %llmgine Please remove a.txt"):out.index("### print('ran so far:', ran)")]
    assert "Removing it." in asked
    assert '[approval needed] remove(path="a.txt") (risk: destructive)' in asked
    assert f"answer with: %llmgine approve {ID}   or   %llmgine deny {ID} [reason]" in asked
    assert "ran so far: []" in out, "nothing ran before the approval"
    assert f"approval {ID}: remove(path=\"a.txt\")" in section(out, "%llmgine pending")
    # Five of the six characters of "call_1" are the provider's prefix: no id (issue 13, item 2).
    assert "UsageError: nothing is waiting for approval with id 'call_1'" in out
    approved = section(out, f"%llmgine approve {ID}")
    assert f"Approved remove ({ID})." in approved
    assert "result: removed a.txt" in out and "Done: a.txt is gone." in out
    assert "ran so far: ['a.txt']" in out
    assert "Traceback" not in out


def test_deny_with_a_reason_and_usage_errors_without_tracebacks(tmp_path):
    out = run_shell('''
        cell("runtime().use_llm(ScriptedLLM([call('remove', path='a.txt'), 'Fine, kept it.']))")
        cell("%llmgine Please remove a.txt")
        until(lambda: runtime().pending())
        cell("%llmgine approve nope")
        cell("%llmgine deny call_1_0 keep it, it is the only copy")
        until(lambda: runtime().last.done())
        cell("print('ran so far:', ran)")
        cell("%llmgine resume nowhere")
        cell("%llmgine config ui=fancy")
        cell("%llmgine ask --colour red What?")
        cell("%llmgine ask -m")
    ''', tmp_path)
    assert f"UsageError: nothing is waiting for approval with id 'nope' (waiting: {ID} (remove))" in out
    assert f"Denied remove ({ID}). Told the model: keep it, it is the only copy" in out
    assert 'Denied by' in out and "keep it, it is the only copy" in out
    assert "ran so far: []" in out
    assert "UsageError: there is no session 'nowhere'; `%llmgine sessions` lists them" in out
    assert "UsageError: ui must be one of auto, widgets, markdown, text, not 'fancy'" in out
    assert "UsageError: unknown option --colour; `%llmgine help` lists the options" in out
    assert "UsageError: argument -m/--model: expected one argument" in out
    assert "Traceback" not in out


def test_input_prompt_answers_approvals_when_configured(tmp_path):
    out = run_shell('''
        cell("%llmgine config approval_prompt=input")
        cell("runtime().use_llm(ScriptedLLM([call('remove', path='a.txt'), 'Removed.']))")
        cell("%llmgine Please remove a.txt")
        cell("print('ran so far:', ran)")
    ''', tmp_path, stdin="y\n")
    assert 'Approve remove(path="a.txt")? (risk: destructive' in out
    assert "Removed." in out and "ran so far: ['a.txt']" in out
    assert "Approved by" in out and "via input()" in out


def test_help_subcommands_and_one_line_questions(tmp_path):
    out = run_shell('''
        cell("runtime().use_llm(ScriptedLLM(lambda messages, tools: 'echo: ' + messages[-1].content))")
        cell("%llmgine?")
        cell("%llmgine help")
        cell("%llmgine What's 2+2? {not a variable}")
        until(lambda: runtime().last.done())
        cell("%llmgine Why is the sky blue?")
        until(lambda: runtime().last.done())
        cell("%llmgine ask model or not?")
        until(lambda: runtime().last.done())
        cell("%llmgine -w -f text Say it plainly")
        cell("%%llmgine --wait --format code\\nWrite x = 1")
        cell("%llmgine model")
        cell("%llmgine sessions")
        cell("%llmgine keys")
        cell("%llmgine")
    ''', tmp_path)
    pinfo = section(out, "%llmgine?")
    assert "%llmgine What is 2+2?" in pinfo and "--schema SCHEMA" in pinfo and "%llmgine deny ID [REASON]" in pinfo
    assert "%llmgine approve ID" in section(out, "%llmgine help")
    assert "echo: What's 2+2? {not a variable}" in out, "the prompt arrives as typed, quotes and braces included"
    assert "echo: model or not?" in out
    assert "echo: Why is the sky blue?" in out, "a question mark does not turn the line into a help request"
    assert "echo: Say it plainly" in section(out, "%llmgine -w -f text Say it plainly")
    assert "echo: Write x = 1" in out
    assert "Model: scripted" in section(out, "%llmgine model")
    assert "messages" in section(out, "%llmgine sessions")
    assert "openai" in section(out, "%llmgine keys") and "not set" in section(out, "%llmgine keys")
    status = out[out.rindex("### %llmgine\n"):]
    assert "llmgine-nb · session" in status and "model scripted" in status and "1 tool from this notebook" in status


def test_reload_ext_leaves_no_duplicate_handlers_and_continues_the_session(tmp_path):
    out = run_shell('''
        from llmgine_nb import Event
        cell("runtime().use_llm(ScriptedLLM(lambda messages, tools: f'turn with {len(messages)} messages'))")
        cell("%llmgine first")
        until(lambda: runtime().last.done())
        first = runtime()
        session = first.session_id
        handlers = len(first.bus._subscriptions[Event])
        cell("%reload_ext llmgine_nb")
        second = runtime()
        cell("runtime().use_llm(ScriptedLLM(lambda messages, tools: f'turn with {len(messages)} messages'))")
        cell("%llmgine second")
        until(lambda: second.last.done())
        print("same runtime:", first is second, "| old bus handlers left:", sum(map(len, first.bus._subscriptions.values())))
        print("handlers:", handlers, len(second.bus._subscriptions[Event]))
        print("same session:", second.session_id == session)
        print("magics:", [name for name in shell.magics_manager.magics["line"] if name == "llmgine"])
    ''', tmp_path)
    assert "same runtime: False | old bus handlers left: 0" in out
    handlers = out.split("handlers: ")[1].split("\n")[0].split()
    assert handlers[0] == handlers[1], "a reload does not add handlers"
    assert "same session: True" in out
    assert "magics: ['llmgine']" in out
    second = section(out, "%llmgine second")
    assert second.count("turn with 3 messages") == 1, "one output per turn, and the history continued"


@pytest.mark.parametrize(
    ("line", "options", "prompt"),
    [
        ("What's up?", {}, "What's up?"),
        ("-m fast --wait Why is the sky blue?", {"model": "fast", "wait": True}, "Why is the sky blue?"),
        ('--system "Be brief" -f json List 3 colours', {"system": "Be brief", "format": "json"}, "List 3 colours"),
        ('-m smart  Say  "hi"   twice, it\'s fine', {"model": "smart"}, 'Say  "hi"   twice, it\'s fine'),
        ("--model=smart -- -5 degrees: cold?", {"model": "smart"}, "-5 degrees: cold?"),
        ("-w", {"wait": True}, ""),
        ("--image fig -i Out[3] -i 'my plot.png' Compare them", {"image": ["fig", "Out[3]", "my plot.png"]},
         "Compare them"),
    ],
)
def test_prompt_options_are_parsed_by_argparse_and_the_rest_kept_as_typed(line, options, prompt):
    args, rest = parse_prompt_options(line)
    assert rest == prompt
    defaults = {"model": None, "session": None, "system": None, "no_tools": False, "format": None, "schema": None,
                "out": None, "wait": False, "image": []}
    assert vars(args) == {**defaults, **options}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--colour red What?", "unknown option --colour; `%llmgine help` lists the options"),
        ("-m", "argument -m/--model: expected one argument; `%llmgine help` lists the options"),
        ("-f html Hi", "argument -f/--format: invalid choice: 'html'"),
    ],
)
def test_bad_prompt_options_are_a_sentence(line, message):
    with pytest.raises(UsageError) as caught:
        parse_prompt_options(line)
    assert message in str(caught.value)


def test_help_shows_the_format_choices_readably():
    from llmgine_nb.notebook.magics import LLMgineMagics

    doc = " ".join(LLMgineMagics.llmgine.__doc__.split())  # argparse wraps lines at its own width
    assert "-f FORMAT, --format FORMAT" in doc
    assert "how to show the answer: markdown, text, code or json (default: markdown)" in doc
    assert "{markdown,text,code,json}" not in doc


def test_every_subcommand_of_the_issue_exists():
    for name in ("help", "model", "sessions", "new", "resume", "fork", "history", "tools", "approve", "deny",
                 "stop", "usage", "log", "config", "keys", "export", "ask"):
        assert name in SUBCOMMANDS


def test_question_lines_are_kept_from_ipythons_help_syntax():
    assert keep_questions(["%llmgine Why is the sky blue?\n"]) == [
        "get_ipython().run_line_magic('llmgine', 'Why is the sky blue?')\n"]
    assert keep_questions(["x = 1\n", "%llmgine ask What's up??"]) == [
        "x = 1\n", "get_ipython().run_line_magic('llmgine', \"ask What's up??\")"]
    for untouched in (["%llmgine?\n"], ["%llmgine??"], ["%llmgine sessions\n"], ["%%llmgine\n", "%llmgine Why?\n"]):
        assert keep_questions(untouched) == untouched


SCHEMA_CELL = """
from pydantic import BaseModel

class City(BaseModel):
    name: str
    population: int

def reply(messages, tools):
    system = messages[0].content if messages[0].role == "system" else None
    if "JSON" in (messages[-1].content or ""):
        return '{"name": "Lyon", "population": 522000}'
    return f"system={system} tools={len(tools or [])}"

runtime().use_llm(ScriptedLLM(reply))
"""


def test_cell_magic_options_reach_the_turn(tmp_path):
    out = run_shell(f'''
        cell({SCHEMA_CELL!r})
        cell("%%llmgine --wait\\nWhich tools?")
        cell("%%llmgine --wait --no-tools --system 'Be terse.'\\nWhich tools now?")
        cell("%%llmgine -w -s research\\nIn another session")
        cell("print('current:', runtime().store.get_session(runtime().session_id).name)")
        cell("%%llmgine -w --schema City -o city\\nThe largest city on the Rhône, as JSON")
        until(lambda: "city" in shell.user_ns)
        cell("print(repr(city))")
        cell("%%llmgine --schema Nowhere\\nx")
    ''', tmp_path)
    assert "system=None tools=1" in out
    assert "system=Be terse. tools=0" in out
    assert "current: None" in out, "-s runs one cell in another session without switching to it"
    assert "City(name='Lyon', population=522000)" in out
    assert "UsageError: there is no 'Nowhere' in the notebook; define the pydantic model first" in out


def test_session_and_reporting_subcommands(tmp_path):
    out = run_shell('''
        cell("runtime().use_llm(ScriptedLLM(lambda messages, tools: 'echo: ' + messages[-1].content))")
        cell("%llmgine -w tell me about otters")
        cell("%llmgine new research")
        cell("%llmgine -w tell me about herons")
        cell("%llmgine history")
        cell("%llmgine history --search otters")
        cell("%llmgine log turn")
        cell("%llmgine resume research")
        cell("%llmgine fork")
        cell("%llmgine fork side branch")
        cell("first = runtime().store.messages(runtime().session_id)[0].id; get_ipython().run_line_magic('llmgine', f'fork {first[:8]} early')")
        cell("print('forked history:', [m.content for m in runtime().store.messages(runtime().session_id)])")
        cell("%llmgine sessions")
        cell("%llmgine tools")
        cell("%llmgine usage")
        cell("%llmgine usage --all")
        cell("%llmgine config format=text")
        cell("%llmgine config")
        cell("%llmgine export talk.md")
        cell("print(open('talk.md').read()[:2000])")
        cell("%llmgine stop")
        cell("%llmgine pending")
    ''', tmp_path)
    assert "New session research (" in out
    assert "echo: tell me about herons" in section(out, "%llmgine history")
    assert "otters" in section(out, "%llmgine history --search otters")
    assert "Resumed session research" in out and "2 messages" in out
    assert "Forked into session (" in out and "Forked into session side branch (" in out
    assert "Forked into session early (" in out and "forked history: ['tell me about herons']" in out
    assert "research" in section(out, "%llmgine sessions")
    assert "remove" in section(out, "%llmgine tools") and "destructive" in section(out, "%llmgine tools")
    assert "No model calls yet (this session)." in section(out, "%llmgine usage\n"), "the fork has made no calls"
    assert "scripted  2" in section(out, "%llmgine usage --all")
    assert "TurnStarted" in section(out, "%llmgine log turn") and "ToolFinished" not in section(out, "%llmgine log turn")
    assert "Set format=text" in out and "format" in section(out, "%llmgine config\n")
    assert "Exported the session to talk.md" in out and "herons" in section(out, "print(open('talk.md')")
    assert "No turn is running." in out and "Nothing is waiting for an answer." in out
    assert "Traceback" not in out and "UsageError" not in out


def test_review_fixes_prompts_ids_retry_and_export(tmp_path):
    """Capitalised words are prompts; short ids are refused; a failed turn is retried, not re-sent;
    bad options fail before a turn starts; errors read as sentences; export keeps existing files."""
    (tmp_path / "kept.md").write_text("mine")
    out = run_shell('''
        from llmgine_nb.llm import ScriptedLLM, call
        from llmgine_nb.llm.errors import LLMAuthenticationError
        from llmgine_nb.tools.python import python_tool
        rt = shell.user_ns["rt"] = runtime()
        rt.use_llm(ScriptedLLM(lambda messages, tools: 'echo: ' + messages[-1].content))
        cell("%llmgine Model a queue in Python")
        until(lambda: rt.last.done())
        cell("%llmgine New ideas for dinner?")
        until(lambda: rt.last.done())
        cell("%llmgine model a queue in Python")
        cell("print('model now:', rt.model, '; sessions:', len(rt.store.list_sessions()))")
        cell("%llmgine ask -o 1bad What?")
        cell("print('messages stored:', len(rt.store.messages(rt.session_id)))")
        first = shell.user_ns["first"] = rt.session_id
        cell("%llmgine new other")
        cell(f"%llmgine ask -s {first[:12]} -w back to the first")
        cell("print('same session:', rt.last.session_id == first, len(rt.store.list_sessions()))")

        rt.use_llm(ScriptedLLM([LLMAuthenticationError('The key was refused (scripted).'), 'Second time lucky.']))
        cell("%llmgine -w hello once")
        cell("%llmgine retry -w")
        cell("print('stored:', [m.content for m in rt.store.messages(rt.session_id)])")

        rt.use_llm(ScriptedLLM([call('remove', path='a.txt'), 'ok']))
        cell("%llmgine Please remove a.txt")
        until(lambda: rt.pending())
        cell("%llmgine approve c")
        cell("%llmgine approve call_")
        cell("print('ran so far:', ran)")
        cell("%llmgine fork")
        cell("%llmgine deny call_1_0")
        until(lambda: rt.last.done())

        rt.tools.register(python_tool(namespace=shell.user_ns, in_kernel=True))
        rt.use_llm(ScriptedLLM([call('run_python', code='x = 1'), 'ok']))
        cell("%llmgine Run it")
        until(lambda: rt.pending())
        cell("%llmgine always call_1_0")
        until(lambda: rt.last.done())

        cell("%llmgine export kept.md")
        cell("print('kept:', open('kept.md').read())")
        cell("%llmgine export kept.md --force")
        cell("%llmgine export no/such/folder/x.md")
    ''', tmp_path)
    assert "echo: Model a queue in Python" in out and "echo: New ideas for dinner?" in out
    assert "UsageError: 'a queue in Python' is not a model name" in out
    assert "model now: scripted ; sessions: 1" in out, "neither the model nor the sessions changed"
    assert "UsageError: '1bad' is not a valid variable name for --out" in out
    assert "messages stored: 4" in out, "the bad option stopped the turn before it started"
    assert "echo: back to the first" in out and "same session: True 2" in out
    assert "then %llmgine retry" in section(out, "%llmgine -w hello once")
    assert "Second time lucky." in section(out, "%llmgine retry -w")
    assert "stored: ['hello once', 'Second time lucky.']" in out, "the retried message is stored once"
    assert "UsageError: nothing is waiting for approval with id 'c'" in out and "at least 6 characters" in out
    assert "UsageError: nothing is waiting for approval with id 'call_'" in out
    assert "ran so far: []" in out
    assert "UsageError: a turn is running in this session; wait for it or cancel it before you" in out
    assert "RuntimeError" not in out
    # The same call id in the same session gets another display id: one just used is not handed out again.
    again = re.search(r"Approved run_python \((\w+)\) this once: run_python does not remember approvals", out)
    assert again is not None and again.group(1) != ID and again.group(1).startswith(ID)
    assert "it runs without asking" not in out and "always, for this session" not in out
    assert "Approved (this once: the tool does not remember approvals) by" in out
    assert "UsageError: kept.md already exists; choose another name, or overwrite it (--force)" in out
    assert "kept: mine" in out
    assert "Exported the session to kept.md" in out
    assert "UsageError: cannot write no/such/folder/x.md" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("name", "rest", "expected"),
    [
        ("sessions", "", {"limit": 20}),
        ("sessions", "5", {"limit": 5}),
        ("history", "3", {"last": 3, "search": None}),
        ("history", "--search don't panic", {"last": None, "search": ["don't panic"]}),
        ("retry", "-w", {"wait": True}),
        ("usage", "--all", {"all": True}),
        ("log", "turn tool", {"types": ["turn", "tool"]}),
        ("export", '"my talk.md" --force', {"path": "my talk.md", "force": True}),
    ],
)
def test_subcommand_options_are_read_by_argparse(name, rest, expected):
    from llmgine_nb.notebook.magic_options import parse_subcommand

    assert vars(parse_subcommand(name, rest)) == expected


@pytest.mark.parametrize(
    ("name", "rest", "message"),
    [
        ("retry", "--bogus", "%llmgine retry: unrecognized arguments: --bogus (usage: %llmgine retry [-w])"),
        ("sessions", "many", "%llmgine sessions: argument limit: invalid int value: 'many'"),
        ("export", "a.md b.md", "%llmgine export: unrecognized arguments: b.md"),
    ],
)
def test_bad_subcommand_options_are_a_sentence_with_the_usage(name, rest, message):
    from llmgine_nb.notebook.magic_options import parse_subcommand

    with pytest.raises(UsageError) as caught:
        parse_subcommand(name, rest)
    assert message in str(caught.value)


def test_every_report_is_shown_as_itself_with_widgets_on(tmp_path):
    """Reports are static outputs in every front end: with ui=widgets too, each subcommand displays its report.

    (``_show`` once had a widget branch for reports with a ``widget`` attribute; no report has one.)"""
    out = run_shell('''
        import IPython.display
        shown = []
        IPython.display.display = lambda obj, **kw: shown.append(obj)
        cell("%llmgine config ui=widgets")
        cell("%llmgine --wait What is 2+2?")
        subcommands = ["sessions", "history", "tools", "usage", "log", "config", "keys", "model", "context"]
        for sub in subcommands:
            before = len(shown)
            cell(f"%llmgine {sub}")
            report = shown[before] if len(shown) == before + 1 else None
            static = report is not None and any(hasattr(report, m) for m in ("_repr_html_", "_repr_markdown_"))
            print(f"REPORT {sub} {type(report).__name__} static={static} widget={hasattr(report, 'widget')}")
    ''', tmp_path)
    reports = re.findall(r"REPORT (\w+) (\w+) static=(\w+) widget=(\w+)", out)
    assert [r[0] for r in reports] == ["sessions", "history", "tools", "usage", "log", "config", "keys", "model",
                                       "context"], out
    for sub, kind, static, widget in reports:
        assert kind.endswith(("Report", "View")) and static == "True" and widget == "False", (sub, kind)
    assert "Traceback" not in out
