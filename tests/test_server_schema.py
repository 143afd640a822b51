"""The OpenAPI document, and schemathesis run against it over real HTTP: no server errors,
every response matching its schema and status codes."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance
from server_harness import LiveServer

from llmgine_nb.engine.events import TurnFinished
from llmgine_nb.server import ServerConfig, create_app
from llmgine_nb.server.demo import demo_llm, demo_tools
from llmgine_nb.store import Store
from llmgine_nb.store.users import add_user
from llmgine_nb.tools.events import ApprovalRequested


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("schema") / "server.db")
    _, token = add_user(store, "schema")
    config = ServerConfig(requests_per_minute=100_000, max_turns_per_user=1000)
    app = create_app(store, config=config, llm_factory=lambda model: demo_llm(), tools=demo_tools(),
                     approval_timeout=1.0)
    with LiveServer(app) as server:
        yield server, token
    store.close()


@pytest.fixture(scope="module")
def api_schema(live):
    server, _ = live
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


def test_every_command_and_event_is_a_schema_component(live):
    server, _ = live
    document = server.client().get("/openapi.json").json()
    components = document["components"]["schemas"]
    for cls in (TurnFinished, ApprovalRequested):
        schema = components[cls.type_name]
        assert schema["properties"]["type"]["const"] == cls.type_name
        assert set(cls.model_fields) <= set(schema["properties"])
    kinds = {s.get("x-llmgine-kind") for s in components.values()}
    assert {"command", "event"} <= kinds
    assert "/api/sessions/{session_id}/messages" in document["paths"]


def test_events_are_described_with_their_seq_and_the_sse_stream_as_text_event_stream(live):
    server, _ = live
    document = server.client().get("/openapi.json").json()
    components = document["components"]["schemas"]
    finished = components[TurnFinished.type_name]
    assert finished["properties"]["seq"]["type"] == "integer" and "seq" in finished["required"]
    events = document["paths"]["/api/sessions/{session_id}/events"]["get"]["responses"]["200"]
    item = events["content"]["application/json"]["schema"]["items"]
    listed = components[item["$ref"].rsplit("/", 1)[-1]]
    assert {"seq", "type"} <= set(listed["required"])
    sse = document["paths"]["/api/sessions/{session_id}/sse"]["get"]["responses"]["200"]
    assert list(sse["content"]) == ["text/event-stream"] and "id: SEQ" in sse["description"]


def test_the_api_against_its_schema(api_schema, live):
    """Every operation, with generated requests (valid and not): no 5xx, every response as documented.

    (schemathesis's own pytest plugin does not load under this pytest, so
    each operation's hypothesis strategy is run here directly.)
    """
    _, token = live
    failures: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
                timeout=30,
            )
            statuses.append(response.status_code)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    # The tester really ran: many requests, some accepted, some refused.
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
