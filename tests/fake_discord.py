"""A stand-in for Discord's REST API and gateway, for real-wire tests of the Discord bot.

A real aiohttp server on 127.0.0.1 (its own loop, in a thread): discord.py's own client code talks to it as to Discord:

- REST under ``/api/v10``: ``GET /users/@me``, ``GET /oauth2/applications/@me``,
  ``GET /gateway/bot`` (whose ``url`` points at this server's gateway),
  application command registration (``PUT``/``GET`` global and guild
  commands), interaction callbacks (``POST /interactions/{id}/{token}/callback``),
  follow-up webhooks (``POST /webhooks/{app}/{token}``) and their edits
  (``PATCH .../messages/@original`` and ``.../messages/{id}``).  Requests to
  the bot routes need ``Authorization: Bot <token>``; every answer carries
  Discord's ``X-RateLimit-*`` headers.
- The gateway at ``/gateway``: HELLO, IDENTIFY (token and intents checked),
  READY and GUILD_CREATE, heartbeats answered with HEARTBEAT_ACK, RESUME,
  and ``INTERACTION_CREATE`` dispatches the test sends, compressed as
  ``zlib-stream`` when the client asks for it (discord.py does).
- ``rate_limit(method, path_pattern, retry_after)``: the next matching request gets a 429 with
  ``Retry-After`` (and the JSON body and ``Via`` header Discord sends), as from an exhausted bucket.

The test plays the Discord users: ``await fake.slash(user, "darcy",
request="...")`` dispatches a slash command, ``await fake.click(user,
message, custom_id)`` a button click and ``await fake.select(...)`` a select
menu choice.  What the bot posted is in ``fake.messages`` (each with its
edit history), ``fake.callbacks`` and ``fake.requests``; ``await
fake.wait_for(condition)`` polls until a condition holds (``discord_support.py`` runs a bot on it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from fake_discord_types import (
    ALL_PERMISSIONS,
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DISPATCH,
    EPHEMERAL,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    IDENTIFY,
    MEMBER_PERMISSIONS,
    MESSAGE_COMPONENT,
    RESUME,
    UPDATE_MESSAGE,
    DiscordUser,
    FakeMessage,
    Interaction,
    RecordedRequest,
    now,
    options_payload,
)

__all__ = ["FakeDiscord", "DiscordUser", "FakeMessage", "RecordedRequest", "EPHEMERAL"]


class FakeDiscord:
    """Discord's REST API and gateway for one application, one guild and one channel."""

    def __init__(self, *, token: str = "fake-discord-token", heartbeat_interval_ms: int = 41250) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self.application_id = self._snowflake()
        self.bot_user = {"id": self._snowflake(), "username": "Darcy", "discriminator": "0000", "avatar": None,
                         "bot": True, "global_name": None}
        self.guild_id = self._snowflake()
        self.channel_id = self._snowflake()
        self.messages: dict[str, FakeMessage] = {}
        self.callbacks: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or a guild id -> registered commands
        self.identifies: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.resumes = 0
        self.compression: list[str | None] = []
        self.rate_limited: list[RecordedRequest] = []
        self._limits: list[tuple[str, re.Pattern[str], float]] = []
        self._interactions: dict[str, Interaction] = {}
        self._clicked: dict[str, str] = {}  # component interaction id -> the message clicked
        self._sockets: list[tuple[web.WebSocketResponse, Any]] = []  # identified (or resumed) connections
        self._open: set[web.WebSocketResponse] = set()
        self._seq = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be for discord.py to call this server."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    def start(self) -> FakeDiscord:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_server())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-discord", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the fake Discord server did not start within 10 s")
        return self

    async def _start_server(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # the asyncio server: the only place the bound port is known
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    async def _shutdown(self) -> None:
        for socket in list(self._open):
            await socket.close(code=1001, message=b"the fake Discord is shutting down")
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _snowflake(self) -> str:
        return str(next(self._ids))

    # -- what a test does ----------------------------------------------------------------

    def rate_limit(self, method: str, path_pattern: str, retry_after: float = 0.5) -> None:
        """Answer the next request matching ``method`` and ``path_pattern`` (a regex) with a 429."""
        with self._lock:
            self._limits.append((method.upper(), re.compile(path_pattern), retry_after))

    async def slash(self, user: DiscordUser, name: str, **options: Any) -> str:
        """``/name option:value ...`` typed by ``user``; returns the interaction id.

        An option may be a subcommand: ``slash(u, "darcy-admin", confirm={"user": other})``.
        """
        command = self._registered(name)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "guild_id": self.guild_id}
        resolved: dict[str, Any] = {}
        data["options"] = options_payload(options, resolved)
        if resolved:
            data["resolved"] = {"users": resolved}
        return await self._interact(user, APPLICATION_COMMAND, data)

    async def click(self, user: DiscordUser, message: FakeMessage, custom_id_part: str) -> str:
        """``user`` clicks the button of ``message`` whose custom id contains ``custom_id_part``."""
        button = message.component(custom_id_part)
        data = {"custom_id": button["custom_id"], "component_type": 2}
        return await self._interact(user, MESSAGE_COMPONENT, data, message)

    async def select(self, user: DiscordUser, message: FakeMessage, custom_id_part: str, values: list[str]) -> str:
        """``user`` picks ``values`` in the select menu of ``message``."""
        menu = message.component(custom_id_part)
        offered = {o["value"] for o in menu.get("options", [])}
        if not set(values) <= offered:
            raise ValueError(f"{values} are not all among the menu's options {sorted(offered)}")
        data = {"custom_id": menu["custom_id"], "component_type": 3, "values": values}
        return await self._interact(user, MESSAGE_COMPONENT, data, message)

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
            await asyncio.sleep(0.02)

    def visible(self) -> list[FakeMessage]:
        """The bot's messages everyone in the channel sees (not ephemeral), oldest first."""
        return [m for m in self.messages.values() if not m.ephemeral]

    def messages_for(self, interaction_id: str) -> list[FakeMessage]:
        """The messages posted under one interaction's token, oldest first."""
        token = self._interactions[interaction_id].token
        return [m for m in self.messages.values() if m.interaction_token == token]

    def transcript(self) -> str:
        return "\n---\n".join(m.content for m in self.messages.values())

    # -- the gateway ---------------------------------------------------------------------

    async def _interact(self, user: DiscordUser, kind: int, data: dict[str, Any], message: FakeMessage | None = None) -> str:
        interaction = Interaction(self._snowflake(), f"itoken-{self._snowflake()}", user, kind)
        self._interactions[interaction.id] = interaction
        payload: dict[str, Any] = {
            "id": interaction.id, "application_id": self.application_id, "type": kind, "data": data,
            "guild_id": self.guild_id, "channel_id": self.channel_id,
            "channel": {"id": self.channel_id, "type": 0, "guild_id": self.guild_id, "name": "general", "position": 0,
                        "permission_overwrites": []},
            "member": {"user": user.payload(), "roles": [], "joined_at": now(), "deaf": False, "mute": False,
                       "flags": 0, "permissions": ALL_PERMISSIONS if user.admin else MEMBER_PERMISSIONS},
            "token": interaction.token, "version": 1, "app_permissions": ALL_PERMISSIONS, "locale": "en-GB",
            "guild_locale": "en-GB", "entitlements": [], "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0, "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = self._message_payload(message)
            self._clicked[interaction.id] = message.id
        if self._loop is None:
            raise RuntimeError("start the fake Discord first")
        future = asyncio.run_coroutine_threadsafe(self._dispatch("INTERACTION_CREATE", payload), self._loop)
        await asyncio.wrap_future(future)
        return interaction.id

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        if not self._sockets:
            raise RuntimeError("no bot is connected to the fake gateway")
        socket, compressor = self._sockets[-1]
        self._seq += 1
        await self._send(socket, compressor, {"op": DISPATCH, "t": event, "s": self._seq, "d": data})

    @staticmethod
    async def _send(socket: web.WebSocketResponse, compressor: Any, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if compressor is None:
            await socket.send_str(text)
        else:  # zlib-stream: one shared stream, each message ends with a sync flush (00 00 ff ff)
            await socket.send_bytes(compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._open.add(socket)
        compression = request.query.get("compress")
        if compression not in (None, "zlib-stream"):
            await socket.close(code=4000, message=b"only zlib-stream compression is offered here")
            return socket
        self.compression.append(compression)
        compressor = zlib.compressobj() if compression else None
        await self._send(socket, compressor, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                await self._on_gateway_message(socket, compressor, message)
        finally:
            self._sockets = [s for s in self._sockets if s[0] is not socket]
            self._open.discard(socket)
        return socket

    async def _on_gateway_message(self, socket: web.WebSocketResponse, compressor: Any, message: dict[str, Any]) -> None:
        op, data = message.get("op"), message.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send(socket, compressor, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            if data.get("token") != self.token:
                await socket.close(code=4004, message=b"Authentication failed.")
                return
            self.identifies.append(data)
            self._sockets.append((socket, compressor))
            self._seq = 0
            await self._dispatch("READY", {
                "v": 10, "user": self.bot_user, "guilds": [{"id": self.guild_id, "unavailable": True}],
                "session_id": f"session-{self._snowflake()}", "resume_gateway_url": self.gateway_url,
                "application": {"id": self.application_id, "flags": 0}, "shard": data.get("shard", [0, 1]),
            })
            await self._dispatch("GUILD_CREATE", self._guild())
        elif op == RESUME:
            self.resumes += 1
            self._sockets.append((socket, compressor))
            await self._dispatch("RESUMED", {})

    def _guild(self) -> dict[str, Any]:
        return {
            "id": self.guild_id, "name": "Student Club", "owner_id": "1", "unavailable": False,
            "member_count": 7, "large": False, "features": [], "emojis": [], "stickers": [], "members": [],
            "presences": [], "voice_states": [], "threads": [], "stage_instances": [], "guild_scheduled_events": [],
            "roles": [{"id": self.guild_id, "name": "@everyone", "permissions": MEMBER_PERMISSIONS, "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "channels": [{"id": self.channel_id, "type": 0, "name": "general", "position": 0,
                          "permission_overwrites": [], "guild_id": self.guild_id}],
            "joined_at": now(), "preferred_locale": "en-GB", "premium_tier": 0, "system_channel_flags": 0,
            "verification_level": 0, "explicit_content_filter": 0, "default_message_notifications": 0,
            "mfa_level": 0, "nsfw_level": 0, "afk_timeout": 300,
        }

    # -- REST ----------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        raw = await request.read()
        body = json.loads(raw) if raw else None
        limited = self._take_limit(request.method, path)
        if limited is not None:
            self._record(request.method, path, body, 429, rate_limited=True)
            return _json(
                {"message": "You are being rate limited.", "retry_after": limited, "global": False},
                status=429,
                headers={"Retry-After": f"{limited:g}", "Via": "1.1 google", "X-RateLimit-Scope": "user",
                         "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset-After": f"{limited:g}", "X-RateLimit-Bucket": "fake"},
            )
        needs_auth = not path.startswith(("/webhooks/", "/interactions/"))
        if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
            self._record(request.method, path, body, 401)
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            status, answer = self._route(request.method, path, body, request.query)
        except LookupError as exc:
            status, answer = 404, {"message": f"Unknown {exc}", "code": 10008}
        except ValueError as exc:
            status, answer = 400, {"message": str(exc), "code": 50035}
        self._record(request.method, path, body, status)
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1",
                   "X-RateLimit-Bucket": "fake", "Via": "1.1 google"}
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json(answer, status=status, headers=headers)

    def _take_limit(self, method: str, path: str) -> float | None:
        with self._lock:
            for i, (m, pattern, retry_after) in enumerate(self._limits):
                if m == method and pattern.search(path):
                    del self._limits[i]
                    return retry_after
        return None

    def _record(self, method: str, path: str, body: Any, status: int, *, rate_limited: bool = False) -> None:
        entry = RecordedRequest(method, path, body, status, time.monotonic())
        with self._lock:
            self.requests.append(entry)
            if rate_limited:
                self.rate_limited.append(entry)

    def _route(self, method: str, path: str, body: Any, query: Any) -> tuple[int, Any]:
        app = self.application_id
        if method == "GET" and path == "/users/@me":
            return 200, self.bot_user
        if method == "GET" and path == "/oauth2/applications/@me":
            return 200, {"id": app, "name": "Darcy", "icon": None, "description": "", "bot_public": False,
                         "bot_require_code_grant": False, "owner": {**self.bot_user, "bot": False, "username": "owner"},
                         "verify_key": "0" * 64, "flags": 0, "team": None, "summary": ""}
        if method == "GET" and path == "/gateway/bot":
            return 200, {"url": self.gateway_url, "shards": 1,
                         "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}
        match = re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", path)
        if match:
            scope = match.group(1) or "global"
            if method == "PUT":
                self.commands[scope] = [self._command(c, scope) for c in body]
            return 200, self.commands.get(scope, [])
        match = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        if match and method == "POST":
            return self._callback(match.group(1), match.group(2), body)
        match = re.fullmatch(rf"/webhooks/{app}/([^/]+)(?:/messages/([^/]+))?", path)
        if match:
            return self._webhook(method, match.group(1), match.group(2), body)
        raise LookupError(f"route {method} {path}")

    def _command(self, payload: dict[str, Any], scope: str) -> dict[str, Any]:
        command = {**payload, "id": self._snowflake(), "application_id": self.application_id, "version": "1",
                   "default_member_permissions": payload.get("default_member_permissions"), "type": payload.get("type", 1)}
        if scope != "global":
            command["guild_id"] = scope
        return command

    def _registered(self, name: str) -> dict[str, Any]:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name:
                    return command
        raise LookupError(f"/{name} is not registered (registered: {[c['name'] for cs in self.commands.values() for c in cs]})")

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
        interaction = self._interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            raise LookupError("interaction")
        if interaction.responded:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        interaction.responded = True
        kind, data = body["type"], body.get("data") or {}
        self.callbacks.append({"interaction_id": interaction_id, "type": kind, "data": data})
        message: FakeMessage | None = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            content = data.get("content") or "" if kind == CHANNEL_MESSAGE else ""
            message = self._post(token, content, data.get("components") or [], data.get("flags") or 0, original=True)
            interaction.original_id = message.id
        elif kind == UPDATE_MESSAGE:
            original = self._component_message(interaction_id)
            message = self._edit(original, data)
        answer: dict[str, Any] = {"interaction": {"id": interaction_id, "type": interaction.kind,
                                                  "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                                                  "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL)}}
        if message is not None:
            answer["interaction"]["response_message_id"] = message.id
            answer["resource"] = {"type": kind, "message": self._message_payload(message)}
        return 200, answer

    def _component_message(self, interaction_id: str) -> FakeMessage:
        """The message whose component was clicked (kept by id from the dispatched payload)."""
        return self.messages[self._clicked[interaction_id]]

    def _webhook(self, method: str, token: str, message_id: str | None, body: Any) -> tuple[int, Any]:
        interaction = next((i for i in self._interactions.values() if i.token == token), None)
        if interaction is None:
            raise LookupError("webhook")
        if method == "POST" and message_id is None:
            message = self._post(token, body.get("content") or "", body.get("components") or [], body.get("flags") or 0)
            return 200, self._message_payload(message)
        if message_id == "@original":
            if interaction.original_id is None:
                raise LookupError("message: the interaction has no response yet")
            message_id = interaction.original_id
        assert message_id is not None
        message = self.messages.get(message_id)
        if message is None or message.interaction_token != token:
            raise LookupError("message")
        if method == "PATCH":
            return 200, self._message_payload(self._edit(message, body))
        if method == "GET":
            return 200, self._message_payload(message)
        if method == "DELETE":
            del self.messages[message_id]
            return 204, None
        raise LookupError(f"webhook route {method}")

    def _post(self, token: str, content: str, components: list[Any], flags: int, *, original: bool = False) -> FakeMessage:
        if len(content) > 2000:
            raise ValueError("Invalid Form Body: content: Must be 2000 or fewer in length.")
        message = FakeMessage(self._snowflake(), token, content, components, flags, original, [content])
        with self._lock:
            self.messages[message.id] = message
        return message

    def _edit(self, message: FakeMessage, body: dict[str, Any]) -> FakeMessage:
        if "content" in body and body["content"] is not None:
            if len(body["content"]) > 2000:
                raise ValueError("Invalid Form Body: content: Must be 2000 or fewer in length.")
            message.content = body["content"]
            message.history.append(message.content)
        if "components" in body:
            message.components = body["components"] or []
        return message

    def _message_payload(self, message: FakeMessage) -> dict[str, Any]:
        return {
            "id": message.id, "channel_id": self.channel_id, "guild_id": self.guild_id, "type": 0,
            "content": message.content, "author": self.bot_user, "attachments": [], "embeds": [], "mentions": [],
            "mention_roles": [], "pinned": False, "mention_everyone": False, "tts": False, "timestamp": now(),
            "edited_timestamp": None, "flags": message.flags, "components": message.components,
            "webhook_id": self.application_id, "application_id": self.application_id,
        }



def _json(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json", as Discord sends it (discord.py compares the header verbatim).
    return web.Response(body=json.dumps(payload).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})
