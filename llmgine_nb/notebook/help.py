"""The text of ``%llmgine help`` (and ``%llmgine?``): one place, read by the magics and the runtime."""

from __future__ import annotations

__all__ = ["HELP"]

HELP = """\
%llmgine / %%llmgine: talk to a model from the notebook (llmgine-nb).

Ask
  %llmgine What is 2+2?              a one-line question: anything that does not start
                                     with a subcommand below is a prompt
  %llmgine ask model or not?         `ask` for a question that starts with a subcommand word
  %llmgine ask -m smart -w Why?      options go before the question
  %%llmgine [options]                the cell body is the prompt

  The turn runs in the background: the cell returns at once, the output updates
  in place and other cells keep running; -w / --wait blocks instead (for scripts,
  "run all" and nbval), asking approvals with input(). In a prompt, {name} is
  replaced by the value of variable `name` (DataFrames are summarised) and
  In[3] / Out[3] attach that cell. A question may end with "?": it stays a question.
  Images: {fig} in a prompt sends the figure, PIL image or image file `fig` holds
  as an image part; --image NAME|Out[N]|_|PATH (repeatable) sends one too.
  Functions decorated with @tool in the notebook are the model's tools.

Code and fixes
  %llmgine -f code Write a function that ...
                                     the answer's code goes into a new cell below (not run);
                                     the cell waits for the answer
  %llmgine fix                       explain the last exception (traceback, the failing cell,
                                     the values it used) and put a corrected cell below
  %llmgine explain N [-w]            explain cell N and its output

Prompts over data
  %llmgine map DATA [options] -- TEMPLATE
                                     run TEMPLATE ({column}, {item}; {name}/{text} of files)
                                     over the rows of DataFrame / list DATA or a glob of files:
                                     -c 8 at a time, --max-cost USD (asks before going past it),
                                     --retries 2, --schema MODEL (its fields become columns),
                                     -n NAME, -o VAR, -w; running it again asks only the rows
                                     not answered yet (after a kernel restart too)

Sessions
  %llmgine sessions [N]              recent sessions (the current one is marked)
  %llmgine new [NAME]                start a new session
  %llmgine resume NAME|ID            continue an earlier session
  %llmgine fork [MESSAGE_ID] [NAME]  continue in a copy of this session
  %llmgine history [N]               this session's messages (the last N)
  %llmgine history --search WORDS    search the messages of every session
  %llmgine forget ID [--undo]        leave the exchange holding message ID out of what the
                                     model is sent (it stays in the history, marked)
  %llmgine edit ID NEW TEXT          replace a message's text (ID: a message, not a card)
  %llmgine pin ID [--off]            send message ID on every turn, however long the history

Model and tools
  %llmgine model                     the current model, the aliases and how to set them
  %llmgine model NAME                switch: openai/gpt-4o-mini, fast, smart, scripted ...
  %llmgine tools                     the tools the model may call, with schema and policy
  %llmgine mcp [help]                MCP servers' tools: add NAME -- COMMAND ARGS... | add NAME URL,
                                     load FILE, start, restart, stop, remove

Approvals and questions
  %llmgine pending                   what waits for an answer
  %llmgine approve ID                run the tool call as asked (ID: the short id on its card)
  %llmgine deny ID [REASON]          do not run it; the reason is told to the model
  %llmgine always ID                 approve, and allow that tool for the rest of the session
  %llmgine edit ID {"arg": 1}        run it with these arguments instead
  %llmgine answer ID VALUE           answer a tool's question: yes / no, or an option number
  %llmgine stop                      cancel the running turn (the partial reply is kept);
                                     the kernel's interrupt (the stop button) does too
  %llmgine retry [-w]                after a failed or stopped turn: run your last message
                                     again (re-running its cell would send it twice)

Looking back
  %llmgine usage [--all]             tokens and cost per model, with a chart over time
  %llmgine context                   exactly what the last request sent: each part with
                                     its tokens, images, tools, what was dropped or summarised
  %llmgine log [TYPE ...]            the session's events: filterable table and timeline
  %llmgine export PATH [--force]     write the session to PATH (.ipynb or .md); --force
                                     replaces an existing file

Settings
  %llmgine config                    settings, model, database, environment (no secrets)
  %llmgine config NAME=VALUE ...     change a setting: ui, approval_prompt, format, user,
                                     updates_per_second, approval_timeout, max_steps,
                                     request_cache (on: an identical request replays
                                     its stored answer instead of paying again)
  %llmgine keys                      which providers have an API key (masked)
  %llmgine help                      this text

Configuration comes from the environment or a .env file: LLMGINE_MODEL,
LLMGINE_API_BASE, LLMGINE_DB and the providers' keys (OPENAI_API_KEY, ...);
LLMGINE_FAST_MODEL and LLMGINE_SMART_MODEL point the aliases fast and smart at
models. Without a model configured, the offline model 'scripted' answers (fast
and smart too): it echoes the prompt, and calls a tool when the prompt writes the
call, e.g. %llmgine remove(path="a.txt").

Everything here is also a Python API: llmgine_nb.notebook.runtime() is this
kernel's NotebookRuntime (ask, ask_sync, approve, deny, sessions, usage, log ...).

Options of %%llmgine and %llmgine ask:"""
