"""``first_turn``: from ``%load_ext llmgine_nb`` in a fresh kernel to the first token of the first answer.

A kernel of this venv is started with jupyter_client and left to become
idle, with a model configured the way a user configures an OpenAI-compatible
server (``LLMGINE_MODEL``, ``LLMGINE_API_BASE``, ``OPENAI_API_KEY``).  The
clock starts when ``%load_ext llmgine_nb`` is sent; ``%llmgine <question>``
is sent at once after it (two cells run one after the other), and the clock
stops when the cell's output first shows the first piece of the streamed
answer.  The server is ``tests/fake_openai.py`` on 127.0.0.1.

Baseline: a fresh Python process that imports the bare ``openai`` SDK and
makes the same streaming request (interpreter start, import and request),
stopped when it prints the first piece.  The best of ``ROUNDS`` of each,
alternating.  Peak memory (the process's high-water mark of resident memory,
``VmHWM``) is read from ``/proc`` at the moment the first piece arrives.
The note also gives one run with ``LLMGINE_USE_LITELLM=1`` (the path every
first question took before: litellm's import and tokenizer first).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

ROUNDS = 3
QUESTION = "Say hello."
ANSWER = "Zebras are, as it happens, the first thing I wanted to mention today."
FIRST_PIECE = "Zebras"  # the first streamed chunk (chunk_size 6) and nothing else says it
MODEL = "openai/gpt-4o-mini"

_BARE_SDK = """
import sys
import openai
client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
stream = client.chat.completions.create(
    model=sys.argv[3], messages=[{"role": "user", "content": sys.argv[4]}], stream=True,
    stream_options={"include_usage": True},
)
shown = False
for chunk in stream:  # read to the end, so the server sees a finished request
    if not shown and chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, flush=True)
        shown = True
sys.stdin.read()  # stay alive until the parent has read the memory figure
"""


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare_sdk(server) -> tuple[float, float]:
    args = [server.base_url, server.api_key, MODEL.split("/", 1)[1], QUESTION]
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _BARE_SDK, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdin is not None
    first = child.stdout.readline()
    elapsed = time.perf_counter() - start
    peak = _peak_mb(child.pid)
    child.stdin.close()
    child.wait(30)
    assert first.strip() == FIRST_PIECE, first
    return elapsed, peak


def _kernel_texts(msg: dict) -> str:
    content = msg.get("content", {})
    return json.dumps(content.get("data", {})) + str(content.get("text", ""))


def _notebook(server, extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    from jupyter_client import KernelManager

    with tempfile.TemporaryDirectory(prefix="llmgine-first-turn-") as tmp:
        env = {
            **os.environ,
            "IPYTHONDIR": os.path.join(tmp, "ipython"),
            "LLMGINE_DB": os.path.join(tmp, "llmgine.db"),
            "LLMGINE_MODEL": MODEL,
            "LLMGINE_API_BASE": server.base_url,
            "OPENAI_API_KEY": server.api_key,
            **(extra_env or {}),
        }
        env.pop("LLMGINE_BLOCK_REAL_MODELS", None)
        manager = KernelManager(kernel_cmd=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])
        manager.start_kernel(env=env, cwd=tmp)
        client = manager.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=120)
            _drain(client)
            time.sleep(1.0)  # idle: nothing of the kernel's start-up still running
            _drain(client)
            start = time.perf_counter()
            client.execute("%load_ext llmgine_nb")
            question = client.execute(f"%llmgine {QUESTION}")
            deadline = start + 120
            while True:
                try:
                    msg = client.get_iopub_msg(timeout=max(0.01, deadline - time.perf_counter()))
                except queue.Empty:
                    raise RuntimeError("no first token from the notebook within 120 s") from None
                if msg["parent_header"].get("msg_id") != question:
                    continue
                if msg["msg_type"] == "error":
                    raise RuntimeError(f"the question failed: {msg['content'].get('evalue')}")
                if FIRST_PIECE in _kernel_texts(msg):
                    elapsed = time.perf_counter() - start
                    break
            peak = _peak_mb(manager.provisioner.process.pid)  # type: ignore[union-attr]
            client.get_shell_msg(timeout=60)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return elapsed, peak


def _drain(client) -> None:
    while True:
        try:
            client.get_iopub_msg(timeout=0.2)
        except queue.Empty:
            return


def bench_first_turn() -> Figure:
    from fake_openai import FakeOpenAI, Reply

    ours: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    with FakeOpenAI(default=Reply(ANSWER, chunk_size=6)) as server:
        for round_ in range(ROUNDS):
            # Alternate which goes first so drift in machine load hits both alike.
            if round_ % 2:
                bare.append(_bare_sdk(server))
                ours.append(_notebook(server))
            else:
                ours.append(_notebook(server))
                bare.append(_bare_sdk(server))
        via_litellm = _notebook(server, {"LLMGINE_USE_LITELLM": "1"})
    value, ours_mb = min(ours)
    baseline, bare_mb = min(bare)
    ratio = value / baseline
    load = os.getloadavg()[0]
    return Figure(
        "first_turn", value, baseline, "s", "ratio <= 2.0", ok=ratio <= 2.0,
        note=f"peak memory at the first token {ours_mb:.0f} MB (bare SDK {bare_mb:.0f} MB); "
        f"through litellm (LLMGINE_USE_LITELLM=1) {via_litellm[0]:.2f} s, {via_litellm[1]:.0f} MB; "
        f"runs {', '.join(f'{t:.2f}' for t, _ in ours)} vs {', '.join(f'{t:.2f}' for t, _ in bare)} s; "
        f"load average {load:.2f}",
    )


BENCHMARKS = [bench_first_turn]
