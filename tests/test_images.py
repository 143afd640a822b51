"""Images in prompts: read from figures, PIL images, files and bytes; stored once; counted; sent as image parts.

Real parts throughout: matplotlib (Agg) and Pillow make the images, the
store is SQLite on disk, the engine runs its real turn loop on the offline
model, and the wire test has the openai SDK client and litellm each send the
request over HTTP to the OpenAI-compatible server in ``fake_openai.py``.
"""

from __future__ import annotations

import base64
import io
import json

import matplotlib
import pytest
from fake_openai import FakeOpenAI, Reply, fake_openai  # noqa: F401  (fake_openai is a fixture)
from PIL import Image

from llmgine_nb import MessageBus
from llmgine_nb.chat import IMAGE_URL_SCHEME, ChatMessage
from llmgine_nb.context import ContextCompiler
from llmgine_nb.engine import ChatEngine, ContextCompiled
from llmgine_nb.images import ImageError, image_tokens, is_image, load_image, sniff
from llmgine_nb.llm import LiteLLMClient, OpenAIClient, ScriptedLLM
from llmgine_nb.store import Store
from llmgine_nb.store.export import session_markdown, session_notebook

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def pil_bytes(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def figure():
    fig = plt.figure(figsize=(2, 1.5), dpi=50)
    plt.plot([1, 3, 2])
    yield fig
    plt.close(fig)


# -- reading images -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                                        ("WEBP", "image/webp")])
def test_format_and_size_are_read_from_the_bytes(fmt, mime):
    assert sniff(pil_bytes(fmt, (40, 30))) == (mime, 40, 30)


def test_figures_pil_images_paths_and_bytes_load_as_images(figure, tmp_path):
    from_figure = load_image(figure, label="fig")
    assert from_figure.mime == "image/png" and from_figure.width > 50 and from_figure.label == "fig"
    pil = Image.new("RGBA", (16, 8))
    assert (load_image(pil).width, load_image(pil).height) == (16, 8)
    path = tmp_path / "photo.jpg"
    path.write_bytes(pil_bytes("JPEG", (64, 48)))
    loaded = load_image(str(path))
    assert (loaded.mime, loaded.width, loaded.height) == ("image/jpeg", 64, 48)
    assert load_image(path.read_bytes()).sha256 == loaded.sha256
    assert is_image(figure) and is_image(pil) and is_image(str(path)) and not is_image("a sentence")


def test_what_is_not_an_image_is_refused_with_a_sentence_saying_what_works(tmp_path):
    with pytest.raises(ImageError, match="A list is not an image; give a matplotlib figure"):
        load_image([1, 2])
    with pytest.raises(ImageError, match="Cannot read the image file .*missing.png"):
        load_image(str(tmp_path / "missing.png"))
    (tmp_path / "notes.png").write_text("not really a png")
    with pytest.raises(ImageError, match="is not a PNG, JPEG, GIF or WebP image"):
        load_image(str(tmp_path / "notes.png"))


def test_image_tokens_follow_openais_tile_rule():
    assert image_tokens(1024, 1024) == 765  # 2x2 tiles
    assert image_tokens(2048, 4096) == 1105  # scaled to 768x1536: 2x3 tiles
    assert image_tokens(100, 100) == 255  # one tile


# -- the store ---------------------------------------------------------------------------------


def test_an_image_is_stored_once_and_messages_carry_only_its_reference(db_target, figure):
    store = Store(db_target)  # each backend: a SQLite file, a PostgreSQL schema (tests/services.py)
    first = store.put_image(figure, label="fig")
    again = store.put_image(figure, label="same figure again")
    assert first.sha256 == again.sha256 and store.image_count() == 1
    session = store.create_session("s")
    store.append_message(session.id, ChatMessage(role="user", content="look", images=[first]))
    (message,) = store.messages(session.id)
    assert message.images == [first] and message.images[0].data is None
    record = json.loads(message.model_dump_json())
    assert record["images"][0]["sha256"] == first.sha256 and "data" not in record["images"][0]
    assert message.to_openai()["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": IMAGE_URL_SCHEME + first.sha256}}
    (sendable,) = store.with_image_data([message])
    url = sendable.to_openai()["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.partition(",")[2]) == store.image_data(first.sha256)
    # A fork copies the references; the bytes stay where they are, once.
    fork = store.fork_session(session.id, message.id)
    assert store.messages(fork.id)[0].images == [first] and store.image_count() == 1
    store.close()


def test_exports_carry_the_images(db_target, figure):
    store = Store(db_target)
    ref = store.put_image(figure, label="fig")
    session = store.create_session("s")
    store.append_message(session.id, ChatMessage(role="user", content="look", images=[ref]))
    data = base64.b64encode(store.image_data(ref.sha256)).decode()
    notebook = session_notebook(store, session.id)
    (attachment,) = notebook.cells[1].attachments.values()
    assert attachment == {"image/png": data} and "![fig: PNG" in notebook.cells[1].source
    assert f"(data:image/png;base64,{data})" in session_markdown(store, session.id)
    store.close()


# -- the context compiler and the engine ----------------------------------------------------------


def test_the_compiler_counts_images_and_reports_them(figure):
    ref = load_image(figure, label="fig").ref()
    with_image = ChatMessage(role="user", content="what is this?", images=[ref])
    without = ChatMessage(role="user", content="what is this?")
    compiler = ContextCompiler("scripted", budget=10_000)
    report = compiler.compile_sync([with_image]).report
    expected = image_tokens(ref.width, ref.height)
    assert compiler.counter.count(with_image) - compiler.counter.count(without) == expected
    assert report.images == [ref] and report.image_tokens == expected
    assert report.history_from_id == report.history_to_id == with_image.id


async def test_a_figure_named_in_the_prompt_reaches_the_model_as_an_image_part(db_target, figure):
    bus = MessageBus()
    compiled: list[ContextCompiled] = []
    bus.subscribe(ContextCompiled, compiled.append)
    llm = ScriptedLLM()
    store = Store(db_target)
    engine = ChatEngine(bus, store=store, llm=llm, namespace={"fig": figure})
    await engine.start()
    result = await engine.send("What does {fig} show?")
    ref = store.messages(engine.session_id)[0].images[0]
    assert store.messages(engine.session_id)[0].content == "What does [image fig] show?"
    assert result.text.endswith(f"It received 1 image: fig (PNG {ref.width}x{ref.height}, {ref.size:,} bytes).")
    sent = llm.calls[-1].messages[-1]
    assert sent.images[0].data == store.image_data(ref.sha256)  # the bytes only on the way to the model
    assert compiled[-1].images == [ref] and compiled[-1].image_tokens == image_tokens(ref.width, ref.height)
    assert ref.sha256 in json.dumps(compiled[-1].to_record())
    assert base64.b64encode(store.image_data(ref.sha256)).decode()[:40] not in json.dumps(compiled[-1].to_record())
    await engine.close()
    store.close()


async def test_a_bad_image_fails_the_turn_with_a_sentence_and_keeps_nothing_half_done(tmp_path):
    bus = MessageBus()
    (tmp_path / "broken.png").write_text("not an image")
    store = Store(tmp_path / "db.sqlite")
    engine = ChatEngine(bus, store=store, llm=ScriptedLLM(), namespace={"pic": str(tmp_path / "broken.png")})
    await engine.start()
    result = await engine.send("Look at {pic}")
    assert result.status == "failed" and result.error_kind == "input"
    assert "is not a PNG, JPEG, GIF or WebP image" in (result.reason or "")
    assert store.messages(engine.session_id) == [] and store.image_count() == 0
    await engine.close()
    store.close()


# -- the wire ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", [OpenAIClient, LiteLLMClient])
async def test_an_openai_compatible_server_receives_the_image_part(fake_openai: FakeOpenAI, tmp_path, figure, client):
    fake_openai.add(Reply("A line that goes up, then down."))
    bus = MessageBus()
    store = Store(tmp_path / "db.sqlite")
    llm = client("openai/gpt-4o-mini", bus=bus, api_base=fake_openai.base_url, api_key=fake_openai.api_key)
    engine = ChatEngine(bus, store=store, llm=llm, namespace={"fig": figure})
    await engine.start()
    result = await engine.send("Describe {fig} in one line.")
    assert result.text == "A line that goes up, then down."
    (request,) = fake_openai.requests
    text_part, image_part = request.body["messages"][-1]["content"]
    assert text_part == {"type": "text", "text": "Describe [image fig] in one line."}
    assert image_part["type"] == "image_url"
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    ref = store.messages(engine.session_id)[0].images[0]
    assert base64.b64decode(url.partition(",")[2]) == store.image_data(ref.sha256)
    await engine.close()
    store.close()
