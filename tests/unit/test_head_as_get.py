"""The HEAD layer on its own (api/http/head_requests.py): what the router sees, and what
leaves it, with an app that records its scope and answers a body."""

from __future__ import annotations

from typing import Any

from api.http.head_requests import HeadAsGet


class Recording:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(dict(scope))
        scope["path_template"] = "/things/{id}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"5"), (b"allow", b"GET, OPTIONS")],
            }
        )
        await send({"type": "http.response.body", "body": b"hello", "more_body": False})


async def call(method: str) -> tuple[Recording, dict[str, Any], list[dict[str, Any]]]:
    app, sent = Recording(), []
    scope: dict[str, Any] = {"type": "http", "method": method, "path": "/things/1"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await HeadAsGet(app)(scope, None, send)  # type: ignore[arg-type]
    return app, scope, sent


async def test_the_router_sees_a_head_request_as_a_get_and_the_server_still_a_head() -> None:
    app, scope, _ = await call("HEAD")
    assert app.scopes[0]["method"] == "GET"
    assert scope["method"] == "HEAD"


async def test_a_head_answer_keeps_the_get_fields_and_drops_the_body() -> None:
    _, _, sent = await call("HEAD")
    assert sent[0]["status"] == 200
    assert (b"content-length", b"5") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_the_route_the_router_matched_labels_the_head_request() -> None:
    _, scope, _ = await call("HEAD")
    assert scope["path_template"] == "/things/{id}"


async def test_allow_lists_head_in_answers_to_head_and_options_only() -> None:
    for method, allow in (("HEAD", b"GET, HEAD, OPTIONS"), ("OPTIONS", b"GET, HEAD, OPTIONS")):
        _, _, sent = await call(method)
        assert (b"allow", allow) in sent[0]["headers"]
    _, _, sent = await call("GET")
    assert (b"allow", b"GET, OPTIONS") in sent[0]["headers"]
    assert sent[1]["body"] == b"hello"
