"""``%llmgine map`` in a real kernel: it resumes after a kernel restart without asking answered rows again,
and the cost cap's question is answered by clicking the progress bar's button."""

from __future__ import annotations

import textwrap

from kernel_harness import KernelHarness, offline_env

SETUP = '''
%load_ext llmgine_nb
import pandas as pd
from llmgine_nb.llm import ScriptedLLM
from llmgine_nb.notebook import runtime
rt = runtime()
asked = []

def model(messages, tools):
    prompt = messages[-1].content
    asked.append(prompt)
    if FAIL and prompt.endswith(("3", "4")):
        raise RuntimeError("the provider is down")
    return prompt.upper()

rt.use_llm(ScriptedLLM(model, cost_per_call=0.01))
cities = pd.DataFrame({"city": [f"c{i}" for i in range(6)]})
'''


def kernel(db):
    return KernelHarness(env=offline_env(db))


def test_map_resumes_after_a_kernel_restart(tmp_path):
    db = tmp_path / "llmgine.db"
    line = "%llmgine map cities --retries 0 -o described -w -- Describe {city}"
    with kernel(db) as k:
        k.execute("FAIL = True\n" + textwrap.dedent(SETUP))
        cell = k.execute(line, timeout=60)
        assert "4 of 6 rows answered, 2 failed" in cell.text
        assert "the provider is down" in cell.text
        assert k.execute("print(len(asked), list(described['error'] != ''))").stdout.strip() == \
            "6 [False, False, False, True, True, False]"
    with kernel(db) as k:  # a new kernel process on the same database: the restart
        k.execute("FAIL = False\n" + textwrap.dedent(SETUP))
        cell = k.execute(line, timeout=60)
        assert "6 of 6 rows answered, 4 from the store, $0.0200 spent" in cell.text
        out = k.execute("print(asked); print(list(described['answer']))").stdout
        assert out.splitlines()[0] == "['Describe c3', 'Describe c4']"  # only the rows not answered before
        assert out.splitlines()[1] == str([f"DESCRIBE C{i}" for i in range(6)])


def test_the_cost_cap_question_is_answered_on_the_progress_bar(tmp_path):
    with kernel(tmp_path / "llmgine.db") as k:
        k.execute("FAIL = False\n" + textwrap.dedent(SETUP))
        cell = k.execute("h = rt.map('About {city}', cities, concurrency=1, max_cost=0.02)")
        yes = k.wait_for_widget("ButtonModel", description="Yes, go on", within=cell)
        k.wait_until(lambda: "Go past the cap?" in " ".join(
            str(w.get("value")) for w in k.find_widgets("LabelModel", within=cell)))
        assert k.execute("print(len(asked))").stdout.strip() == "2"  # it waits at the cap
        k.click(yes).wait()
        k.execute("h.wait(30)")
        k.wait_until(lambda: "6 of 6 rows answered, $0.0600 spent" in cell.text, what="the summary")
        assert yes.closed  # the bar made way for the summary: a saved notebook needs no widget state
        assert k.execute("print(len(asked), h.result.complete)").stdout.strip() == "6 True"
        wrong = k.execute("%llmgine map citiez -w -- About {city}", allow_errors=True)
        assert "there is no variable or file named 'citiez'" in wrong.text
