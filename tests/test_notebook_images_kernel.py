"""Images, provenance, ``%llmgine context`` and the request cache in a real Jupyter kernel.

The kernel is a real ipykernel driven as a frontend drives it
(``kernel_harness.py``); matplotlib draws real figures; the offline model
says which images reached it, with their format, size and byte count, so
the test can see that the image parts arrived.
"""

from __future__ import annotations

import re

import pytest
from kernel_harness import KernelHarness, KernelRequest
from test_notebook_kernel import run, value


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    env = {"LLMGINE_DB": str(folder / "llmgine.db"), "LLMGINE_MODEL": "", "OPENAI_API_KEY": "", "MPLBACKEND": "Agg"}
    with KernelHarness(env=env) as k:
        k.execute("%load_ext llmgine_nb")
        run(k, f'''
            import matplotlib.pyplot as plt
            from PIL import Image
            from llmgine_nb.notebook import runtime
            rt = runtime()
            fig = plt.figure(figsize=(2, 1.5), dpi=50)
            plt.plot([1, 3, 2])
            Image.new("RGB", (32, 16), "red").save({str(folder / "red.png")!r})
            folder = {str(folder)!r}
        ''')
        yield k


def final_output(cell: KernelRequest) -> dict:
    (out,) = [o for o in cell.outputs if "llmgine" in o.get("metadata", {})]
    return out


def test_an_image_option_sends_the_figure_and_the_answer_records_its_provenance(kernel):
    run(kernel, "rt.new_session('image-option')")
    cell = run(kernel, "%llmgine --image fig -w What does this plot show?")
    out = final_output(cell)
    text = out["data"]["text/plain"]
    ref = value(kernel, "rt.store.messages(rt.session_id)[0].images[0].model_dump(mode='json')")
    assert f"It received 1 image: fig (PNG {ref['width']}x{ref['height']}, {ref['size']:,} bytes)." in text
    provenance = out["metadata"]["llmgine"]
    assert provenance["session_id"] == value(kernel, "rt.session_id")
    assert provenance["model"] == "scripted" and provenance["turn_id"]
    assert provenance["usage"]["input_tokens"] > 0 and provenance["cost_usd"] == 0.0
    assert provenance["latency_s"] > 0 and re.fullmatch(r"[0-9a-f]{64}", provenance["request_hash"])
    assert provenance["replayed"] is False
    # The hash of the request that was sent, as the logged ContextCompiled event has it.
    assert value(kernel, "rt.context().event.request_hash") == provenance["request_hash"]


def test_references_an_earlier_output_and_a_file_all_arrive_and_are_stored_once(kernel):
    run(kernel, "rt.new_session('image-references')")
    run(kernel, "from IPython.display import Image as IPImage\nIPImage(filename=folder + '/red.png')")
    number = value(kernel, "max(k for k, v in Out.items() if type(v).__name__ == 'Image')")
    run(kernel, "Image.new('RGB', (20, 10), 'green').save(folder + '/green.png')")
    before = value(kernel, "rt.store.image_count()")
    green, red = value(kernel, "folder") + "/green.png", value(kernel, "folder") + "/red.png"
    cell = run(kernel, f"%llmgine --image Out[{number}] --image {green} --image {red} -w Compare {{fig}} with these")
    text = final_output(cell)["data"]["text/plain"]
    # The red square came twice (an output and a file): it is sent once, under the first name it had.
    assert "It received 3 images: " in text
    assert f"Out[{number}] (PNG 32x16," in text and "green.png (PNG 20x10," in text and "fig (PNG " in text
    assert "red.png (PNG" not in text
    # Stored once each by content: the figure was stored by an earlier test, the two squares are new.
    assert value(kernel, "rt.store.image_count()") == before + 2
    history = run(kernel, "%llmgine history").text
    assert "[image fig: PNG" in history and f"[image Out[{number}]: PNG 32x16" in history


def test_context_shows_each_part_with_its_tokens_and_the_images(kernel):
    run(kernel, "rt.new_session('image-context')")
    run(kernel, "%llmgine --system 'Be brief.' -w Hello")
    run(kernel, "%llmgine --image fig -w And this?")
    shown = run(kernel, "%llmgine context").text
    tokens = value(kernel, "rt.engine.compiler.counter.count(rt.store.messages(rt.session_id)[-2])")
    image_tokens = value(kernel, "rt.context().event.image_tokens")
    assert shown.startswith("The last request to scripted: ")
    assert "history  user       " in shown and "And this? [image fig: PNG" in shown
    assert f"{tokens:,}" in shown and image_tokens > 0
    assert f"Images: 1 image, {image_tokens:,} tokens" in shown
    assert "Left out to fit: nothing." in shown and "model calls" not in shown  # one call in this turn
    # The parts add up to the total the compiler reported (the framing overhead is 0 offline).
    rows = re.findall(r"^(?:history|pinned|system|memory|summary)\s+\w+\s+([\d,]+)", shown, re.M)
    total = int(re.search(r": ([\d,]+) of", shown).group(1).replace(",", ""))
    assert sum(int(n.replace(",", "")) for n in rows) == total


def test_the_request_cache_replays_a_notebook_run_again_in_a_new_session(kernel):
    run(kernel, "%llmgine config request_cache=on")
    try:
        run(kernel, "rt.new_session('cache-first-run')")
        first = final_output(run(kernel, "%llmgine -w Summarise {fig} please"))
        run(kernel, "rt.new_session('cache-second-run')")
        again = final_output(run(kernel, "%llmgine -w Summarise {fig} please"))
    finally:
        run(kernel, "%llmgine config request_cache=off")
    assert first["metadata"]["llmgine"]["replayed"] is False
    assert again["metadata"]["llmgine"]["replayed"] is True
    assert again["metadata"]["llmgine"]["request_hash"] == first["metadata"]["llmgine"]["request_hash"]
    assert "replayed from the request cache" in again["data"]["text/plain"]
    assert again["data"]["text/plain"].split("\n")[0] == first["data"]["text/plain"].split("\n")[0]
    run(kernel, "rt.log(); from llmgine_nb.engine.events import RequestReplayed")  # rt.log() writes out the log
    replays = value(kernel, "[e.request_hash for e in rt.store.events(rt.session_id, types=[RequestReplayed])]")
    assert replays == [first["metadata"]["llmgine"]["request_hash"]]


def test_an_image_that_cannot_be_found_is_a_sentence_and_nothing_is_sent(kernel):
    run(kernel, "rt.new_session('image-missing')")
    cell = run(kernel, "%llmgine --image nowhere.png -w Look", allow_errors=True)
    assert cell.error["ename"] == "UsageError"
    assert cell.error["evalue"].startswith("--image nowhere.png: no variable of that name, no such Out[N] and no such file")
    assert value(kernel, "len(rt.store.messages(rt.session_id))") == 0


def test_context_after_a_tool_call_shows_the_tools_offered_and_the_last_call_of_the_turn(kernel):
    run(kernel, '''
        from llmgine_nb import tool

        @tool
        def shout(word: str) -> str:
            """Say a word loudly."""
            return word.upper()
    ''')
    run(kernel, "rt.new_session('context-tools')")
    run(kernel, '%llmgine -w Please shout(word="hey")')
    shown = run(kernel, "%llmgine context").text
    assert "This was the last of the turn's 2 model calls" in shown
    assert "history  assistant" in shown and "→ calls shout" in shown and "history  tool" in shown
    tokens = int(re.search(r"shout \(([\d,]+)\)", shown).group(1).replace(",", ""))
    assert tokens > 0 and "Tools offered (" in shown
