"""``llmgine-nb discord``: the token from DISCORD_TOKEN (environment or .env), clear refusals, a working bot."""

from __future__ import annotations

import pytest
from discord_support import running_bot
from fake_discord import DiscordUser, FakeDiscord

from llmgine_nb.apps.tasks.discord_bot import MissingToken, discord_token
from llmgine_nb.cli import build_parser, main
from llmgine_nb.cli.discord import build_bot


@pytest.fixture(autouse=True)
def no_token(monkeypatch, tmp_path):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)


def test_without_a_token_it_says_where_to_put_one(capsys, tmp_path):
    assert main(["discord", "--board", str(tmp_path / "b.db")]) == 2
    err = capsys.readouterr().err
    assert "No Discord bot token: set DISCORD_TOKEN in the environment or in a .env file" in err
    assert "Traceback" not in err


def test_token_from_environment_then_dotenv(monkeypatch, tmp_path):
    with pytest.raises(MissingToken):
        discord_token()
    (tmp_path / ".env").write_text("OTHER=1\nDISCORD_TOKEN=from-dotenv-file\n")
    assert discord_token() == "from-dotenv-file"
    monkeypatch.setenv("DISCORD_TOKEN", "from-environment")
    assert discord_token() == "from-environment"  # the environment wins over .env


def test_bad_settings_are_a_sentence(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DISCORD_TOKEN", "x")
    assert main(["discord", "--board", str(tmp_path / "b.db"), "--confirm-timeout", "3600"]) == 2
    assert "confirm_timeout must be more than 0 and at most 840 seconds" in capsys.readouterr().err


async def test_the_cli_bot_answers_over_the_wire(tmp_path):
    args = build_parser().parse_args([
        "discord", "--board", str(tmp_path / "board.db"), "--db", str(tmp_path / "darcy.db"), "--demo",
        "--edit-interval", "0.05",
    ])
    with FakeDiscord(token="cli-token") as fake:
        args.guild = int(fake.guild_id)
        bot = build_bot(args)
        async with running_bot(fake, bot.assistant, bot.settings):
            asked = await fake.slash(DiscordUser("1002", "mei"), "darcy", request="show me my tasks")
            await fake.wait_for(lambda: any("Schedule the interview panel" in m.content for m in fake.messages_for(asked)),
                                what="Mei's tasks")
        await bot.assistant.close()
        bot.assistant.board.close()
