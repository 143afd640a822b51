"""Configuration precedence, key masking, model choice, the block switch and the lazy litellm import."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest

from llmgine_nb import MessageBus, dotenv_file
from llmgine_nb.llm import (
    LiteLLMClient,
    LLMCallFailed,
    LLMEvent,
    OpenAIClient,
    RealModelsBlockedError,
    RoutedLLM,
    ScriptedLLM,
    Settings,
    allow_real_models,
    block_real_models,
    choose_model,
    get_llm,
    key_status,
    mask_key,
    real_models_allowed,
    resolve_aliases,
)
from llmgine_nb.llm.base import public_settings
from llmgine_nb.llm.blocking import BLOCK_ENV, is_loopback_url

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789WXYZ"


def test_importing_the_package_does_not_import_litellm() -> None:
    code = "import llmgine_nb, llmgine_nb.llm, sys; assert 'litellm' not in sys.modules, 'litellm was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_the_tools_load_on_first_use_of_their_names() -> None:
    code = (
        "import sys, llmgine_nb\n"
        "assert 'llmgine_nb.tools' not in sys.modules, 'the tools were imported'\n"
        "from llmgine_nb import ToolManager, tool\n"
        "from llmgine_nb.tools import ToolManager as Real\n"
        "assert ToolManager is Real and callable(tool)\n"
        "try:\n"
        "    llmgine_nb.no_such_name\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('an unknown name was found')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_first_real_use_imports_litellm_offline_and_quietly() -> None:
    # A fresh interpreter: the cost map must come from the package, and nothing may be printed.
    code = (
        "import os, logging\n"
        "os.environ.pop('LITELLM_LOCAL_MODEL_COST_MAP', None)\n"
        "from llmgine_nb.llm._litellm import load_litellm\n"
        "litellm = load_litellm()\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'True'\n"
        "assert litellm.suppress_debug_info is True\n"
        "logging.getLogger('LiteLLM').warning('noise that must not reach the cell')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOG"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


_LOAD_EXT_THEN_WAIT = r"""
import sys, time
from IPython.core.interactiveshell import InteractiveShell

def loaded():
    return [name for name, attr in (("litellm", "acompletion"), ("openai", "AsyncOpenAI"))
            if hasattr(sys.modules.get(name), attr)]

InteractiveShell.instance().run_line_magic("load_ext", "llmgine_nb")
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline and sys.argv[2] not in loaded():
    time.sleep(0.05)
time.sleep(0.5)  # anything else on its way in arrives too
print(" ".join(loaded()) or "nothing")
"""


@pytest.mark.parametrize(
    ("model", "wait", "imported"),
    [
        ("openai/gpt-4o-mini", "60", "openai"),
        ("anthropic/claude-haiku-4-5", "60", "litellm openai"),  # litellm imports the openai SDK itself
        ("", "1.5", "nothing"),
    ],
    ids=["openai-sdk", "litellm", "offline"],
)
def test_load_ext_starts_importing_only_the_library_the_model_needs(tmp_path, model, wait, imported) -> None:
    # A real model configured: its library's import starts at %load_ext, in a thread, so the
    # first %llmgine cell does not wait for it: the openai SDK for an OpenAI model (litellm
    # never), litellm for another provider.  The offline model needs neither.
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != BLOCK_ENV}
    env.update(LLMGINE_MODEL=model, LLMGINE_DB=str(tmp_path / "x.db"))
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_EXT_THEN_WAIT, wait, imported.split()[0]], capture_output=True, text=True,
        timeout=120,
        env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == imported


def test_mask_key() -> None:
    assert mask_key(SECRET) == "sk-...WXYZ"
    assert mask_key("short") == "***"
    assert mask_key("") is None and mask_key(None) is None


def test_key_status_reports_masked_keys_from_env_and_dotenv(tmp_path) -> None:
    (tmp_path / ".env").write_text(f"ANTHROPIC_API_KEY={SECRET}\n")
    status = key_status(Settings(env={"OPENAI_API_KEY": SECRET}, dotenv_path=tmp_path / ".env"))
    assert status["openai"] == "sk-...WXYZ" and status["anthropic"] == "sk-...WXYZ"
    assert status["gemini"] is None
    assert SECRET not in repr(status)


def test_precedence_argument_then_environment_then_dotenv(tmp_path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LLMGINE_MODEL=from-dotenv\nLLMGINE_API_BASE=http://dotenv\n")
    only_file = Settings(env={}, dotenv_path=dotenv)
    both = Settings(env={"LLMGINE_MODEL": "from-env"}, dotenv_path=dotenv)
    assert choose_model(None, only_file) .model == "from-dotenv"
    assert choose_model(None, only_file).source == ".env"
    assert choose_model(None, both).model == "from-env"
    assert choose_model(None, both).source == "environment"
    assert choose_model("from-arg", both).model == "from-arg"
    assert choose_model("from-arg", both).source == "argument"
    assert both.value("LLMGINE_API_BASE") == "http://dotenv"
    assert both.value("LLMGINE_API_BASE", "http://arg") == "http://arg"


def test_dotenv_never_overrides_or_enters_the_real_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dotenv_file, "_dotenv_location", None)  # found again, here, as on first loading
    (tmp_path / ".env").write_text("LLMGINE_MODEL=from-dotenv\nLLMGINE_TEST_ONLY_VAR=1\n")
    monkeypatch.setenv("LLMGINE_MODEL", "from-env")
    assert choose_model().model == "from-env"  # the default Settings read ./.env
    monkeypatch.delenv("LLMGINE_MODEL")
    assert choose_model().model == "from-dotenv"
    assert "LLMGINE_TEST_ONLY_VAR" not in os.environ


def test_a_key_alone_picks_that_providers_fast_model(tmp_path) -> None:
    choice = choose_model(None, Settings(env={"ANTHROPIC_API_KEY": SECRET}, dotenv_path=tmp_path / "none"))
    assert choice.model.startswith("anthropic/") and choice.source == "api key"
    assert "ANTHROPIC_API_KEY" in choice.notice and SECRET not in choice.notice


def test_nothing_configured_means_offline_with_one_line_on_how_to_configure(tmp_path) -> None:
    choice = choose_model(None, Settings(env={}, dotenv_path=tmp_path / "none"))
    assert choice.offline and choice.model == "scripted" and choice.source == "offline"
    assert "offline model" in choice.notice
    assert "LLMGINE_MODEL" in choice.notice and "OPENAI_API_KEY" in choice.notice


def test_aliases_from_keys_environment_and_arguments(tmp_path) -> None:
    none = tmp_path / "none"
    assert resolve_aliases(None, Settings(env={}, dotenv_path=none)) == {}
    from_key = resolve_aliases(None, Settings(env={"OPENAI_API_KEY": SECRET}, dotenv_path=none))
    assert from_key["fast"] == "openai/gpt-4o-mini" and from_key["smart"].startswith("openai/")
    env = {"OPENAI_API_KEY": SECRET, "LLMGINE_SMART_MODEL": "anthropic/claude-sonnet-4-5"}
    assert resolve_aliases({"cheap": "x/y"}, Settings(env=env, dotenv_path=none)) == {
        "fast": "openai/gpt-4o-mini",
        "smart": "anthropic/claude-sonnet-4-5",
        "cheap": "x/y",
    }


def test_get_llm_picks_the_client_kind(tmp_path) -> None:
    config = Settings(env={"OPENAI_API_KEY": SECRET}, dotenv_path=tmp_path / "none")
    assert isinstance(get_llm("openai/gpt-4o-mini", config=config), OpenAIClient)  # the openai SDK
    assert isinstance(get_llm("gpt-4o-mini", config=config), OpenAIClient)
    assert isinstance(get_llm("anthropic/claude-haiku-4-5", config=config), LiteLLMClient)
    assert isinstance(get_llm("openai/gpt-4o-mini", config=config, mock_response="hi"), LiteLLMClient)
    via_litellm = Settings(env={"OPENAI_API_KEY": SECRET, "LLMGINE_USE_LITELLM": "1"}, dotenv_path=tmp_path / "none")
    assert isinstance(get_llm("openai/gpt-4o-mini", config=via_litellm), LiteLLMClient)
    routed = get_llm("fast", config=config)
    assert isinstance(routed, RoutedLLM) and routed.aliases["fast"] == "openai/gpt-4o-mini"
    with_fallback = get_llm("openai/gpt-4o", fallbacks={"openai/gpt-4o": ["fast"]}, config=config)
    assert isinstance(with_fallback, RoutedLLM) and with_fallback.fallbacks == {"openai/gpt-4o": ["fast"]}
    assert isinstance(get_llm("scripted", config=config), ScriptedLLM)


def test_keys_never_appear_in_reprs_or_event_settings(tmp_path) -> None:
    client = LiteLLMClient("openai/gpt-4o-mini", api_key=SECRET, config=Settings(env={}, dotenv_path=tmp_path / "n"))
    sdk = OpenAIClient("openai/gpt-4o-mini", api_key=SECRET, config=Settings(env={}, dotenv_path=tmp_path / "n"))
    assert SECRET not in repr(sdk)
    routed = RoutedLLM({"fast": {"model": "openai/gpt-4o-mini", "api_key": SECRET}})
    assert SECRET not in repr(client) and SECRET not in repr(routed) and SECRET not in str(vars(routed).get("aliases"))
    shown = public_settings(
        {
            "api_key": SECRET,
            "aws_secret_access_key": SECRET,
            "extra_headers": {"Authorization": f"Bearer {SECRET}"},
            "api_base": f"https://user:{SECRET}@example.test/v1?key={SECRET}",
            "metadata": {"vertex_credentials": SECRET, "user": "ann"},
            "max_tokens": 100,
            "temperature": 0.5,
        }
    )
    assert SECRET not in repr(shown)
    assert shown["max_tokens"] == 100 and shown["temperature"] == 0.5
    assert shown["api_base"] == "https://example.test/v1"
    assert shown["metadata"] == {"vertex_credentials": "[REDACTED]", "user": "ann"}


# -- the block switch ------------------------------------------------------------------


def test_block_switch_nests_and_follows_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    assert real_models_allowed()
    with block_real_models():
        assert not real_models_allowed()
        with allow_real_models():
            assert real_models_allowed()
        assert not real_models_allowed()
    assert real_models_allowed()
    monkeypatch.setenv(BLOCK_ENV, "1")
    assert not real_models_allowed()
    with allow_real_models():
        assert real_models_allowed()


def test_blocks_on_two_threads_end_in_any_order_without_undoing_each_other(monkeypatch) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    steps = [threading.Event() for _ in range(4)]
    seen: dict[str, bool] = {}

    def allowing() -> None:  # thread A: opens first, ends first
        with allow_real_models():
            steps[0].set()
            steps[1].wait(5)
        steps[2].set()

    def blocking() -> None:  # thread B: opens inside A's block, still open after A's ends
        steps[0].wait(5)
        with block_real_models():
            steps[1].set()
            steps[2].wait(5)
            seen["B after A ended"] = real_models_allowed()
        steps[3].set()

    threads = [threading.Thread(target=allowing), threading.Thread(target=blocking)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert steps[3].is_set()
    assert seen == {"B after A ended": False}  # A's end must not lift B's block
    assert real_models_allowed()  # and nothing is left behind


def test_secret_settings_are_hidden_and_counts_are_not() -> None:
    shown = public_settings({
        "token": "t0k", "api_token": "t1", "openai_key": "k", "private_key": "pk", "aws_session_token": "st",
        "X-Key": "xk", "refresh_token": "rt", "max_tokens": 100, "max_completion_tokens": 50, "top_k": 3,
    })
    assert shown == {"max_tokens": 100, "max_completion_tokens": 50, "top_k": 3}


async def test_a_real_call_while_blocked_raises_without_touching_the_network(tmp_path) -> None:
    bus = MessageBus()
    seen: list[LLMEvent] = []
    bus.subscribe(LLMEvent, seen.append)
    llm = LiteLLMClient(
        "openai/gpt-4o-mini", api_key=SECRET, bus=bus, config=Settings(env={}, dotenv_path=tmp_path / "n")
    )
    with block_real_models():
        with pytest.raises(RealModelsBlockedError) as info:
            await llm.complete("hi")
        with pytest.raises(RealModelsBlockedError):
            await llm.stream("hi").get_response()
    assert "blocked" in str(info.value) and "scripted" in str(info.value)
    assert [type(e) for e in seen].count(LLMCallFailed) == 2
    # The offline model is never blocked.
    with block_real_models():
        assert (await ScriptedLLM(["fine"]).complete("hi")).text == "fine"


async def test_mock_responses_and_loopback_servers_are_not_blocked() -> None:
    llm = LiteLLMClient("openai/gpt-4o-mini", api_key="sk-test-not-real-000000")
    with block_real_models():
        reply = await llm.complete("hi", mock_response="mocked")
    assert reply.text == "mocked"
    assert is_loopback_url("http://127.0.0.1:8000/v1") and is_loopback_url("http://localhost/v1")
    assert is_loopback_url("http://[::1]:9/v1")
    assert not is_loopback_url("https://api.openai.com/v1") and not is_loopback_url("http://10.0.0.1/v1")
    assert not is_loopback_url(None)


def test_litellm_log_records_go_to_our_debug_logger(caplog) -> None:
    from llmgine_nb.llm._litellm import load_litellm

    load_litellm()
    with caplog.at_level(logging.DEBUG, logger="llmgine_nb.llm.litellm"):
        logging.getLogger("LiteLLM").warning("a litellm warning")
    assert any("a litellm warning" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


async def test_a_router_alias_with_mock_response_is_not_blocked():
    from llmgine_nb.llm import block_real_models, get_llm

    llm = get_llm("fast", aliases={"fast": {"model": "openai/gpt-4o-mini", "mock_response": "mocked"}})
    with block_real_models():
        assert (await llm.complete("hi")).text == "mocked"


def test_aliases_with_nothing_configured_are_the_offline_model_and_say_how_to_set_them(tmp_path) -> None:
    nothing = Settings(env={}, dotenv_path=tmp_path / "none")
    for alias in ("fast", "smart"):
        choice = choose_model(alias, nothing)
        assert choice.offline and choice.source == "offline"
        assert f"alias '{alias}'" in choice.notice and "LLMGINE_FAST_MODEL" in choice.notice
        assert isinstance(get_llm(alias, config=nothing), ScriptedLLM)
    # An alias someone defined is not the offline model, nor is a plain model name.
    assert not choose_model("fast", nothing, {"fast": "openai/gpt-4o-mini"}).offline
    assert choose_model("openai/gpt-4o-mini", nothing).model == "openai/gpt-4o-mini"


def test_an_alias_pointing_nowhere_beside_a_real_model_is_a_clear_error(tmp_path) -> None:
    from llmgine_nb.llm import ModelConfigError

    real = Settings(env={"LLMGINE_MODEL": "openai/gpt-4o-mini"}, dotenv_path=tmp_path / "none")
    with pytest.raises(ModelConfigError) as raised:
        get_llm("smart", config=real)
    text = str(raised.value)
    assert "No model is configured for the alias 'smart'" in text
    assert "LLMGINE_SMART_MODEL" in text and "%llmgine" not in text  # front-end neutral: each front end adds its hint
    assert raised.value.kind == "config" and not raised.value.retryable
    pointed = Settings(env={"LLMGINE_MODEL": "openai/gpt-4o-mini", "LLMGINE_SMART_MODEL": "openai/gpt-4.1"},
                       dotenv_path=tmp_path / "none")
    assert get_llm("smart", config=pointed).aliases["smart"] == "openai/gpt-4.1"
