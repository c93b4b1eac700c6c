"""What every HTTP request meets before routing: HEAD answered like GET without a body (RFC 9110: link
checkers and monitors use it), an address with a NUL byte refused with a plain 400 (it names no
file and no record, and some drivers would fail on it), and a body that is not multipart held to
the route's text limit while it is read."""

from __future__ import annotations

import math
from typing import Any

from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, Message, Receive, Scope, Send

BAD_REQUEST = "请求地址无效 / Bad request address".encode()


def _has_nul(scope: Scope) -> bool:
    query = scope.get("query_string", b"") or b""
    return "\x00" in scope.get("path", "") or b"\x00" in query or b"%00" in query


async def _bad_request(send: Send) -> None:
    await send({
        "type": "http.response.start", "status": 400,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(BAD_REQUEST)).encode())],
    })
    await send({"type": "http.response.body", "body": BAD_REQUEST})


TEXT_BODY_KEY = "max_text_body"


def text_body(limit: int) -> dict[str, int]:
    """Route `opt`: the largest body the route takes that is not multipart (its plain form, JSON or raw
    body). Without it, the app-wide limit: a route may allow big multipart bodies (photos) while its
    plain form stays small."""
    return {TEXT_BODY_KEY: limit}


def _text_limit(scope: Scope) -> float:
    """The route's declared text limit; else the smaller of the route's own body limit and the app-wide one
    (a route that takes photos allows big multipart bodies, not big plain ones)."""
    handler = scope.get("route_handler")
    declared = handler.opt.get(TEXT_BODY_KEY) if handler is not None else None
    if declared is not None:
        return float(declared)
    app = scope.get("litestar_app")
    limits = [app.request_max_body_size if app is not None else None]
    if handler is not None and hasattr(handler, "resolve_request_max_body_size"):
        limits.append(handler.resolve_request_max_body_size())
    known = [limit for limit in limits if limit is not None]
    return float(min(known)) if known else math.inf


def _text_body_limited(scope: Scope, receive: Receive) -> Receive:
    """`receive` for a body that is not multipart. Litestar's CSRF middleware parses a whole urlencoded
    form before the handler runs, up to the route's limit (16 MB where photos are taken): refused here
    instead, on the announced length before a byte is read, or once the bytes streamed (chunked, or
    more than announced) pass the limit. The limit is known once the request is routed, and a body is
    only read after that."""
    read = 0
    limit: float | None = None

    async def limited() -> Message:
        nonlocal read, limit
        if limit is None:
            limit = _text_limit(scope)
            announced = dict(scope["headers"]).get(b"content-length", b"")
            if announced.isdigit() and int(announced) > limit:
                raise RequestEntityTooLarge
        message = await receive()
        if message["type"] == "http.request":
            read += len(message.get("body", b""))
            if read > limit:
                raise RequestEntityTooLarge
        return message

    return limited


def edge(app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if _has_nul(scope):
            await _bad_request(send)
            return
        if not dict(scope["headers"]).get(b"content-type", b"").lower().startswith(b"multipart/"):
            receive = _text_body_limited(scope, receive)
        if scope["method"] == "HEAD":
            scope["method"] = "GET"  # type: ignore[typeddict-item]
            scope["shanzhi.head"] = True  # type: ignore[typeddict-unknown-key]  # read by handlers that count opens

            async def headers_only(message: Message) -> None:
                if message["type"] == "http.response.body":
                    message = {**message, "body": b""}  # type: ignore[typeddict-item]
                await send(message)

            await app(scope, receive, headers_only)
            return
        await app(scope, receive, send)

    return handle


def strip_nul(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> tuple[str, Any]:
    """SQLAlchemy `before_cursor_execute` (retval): text parameters lose NUL bytes, which PostgreSQL
    refuses in text (a 500 for a resident's form otherwise) and which no user types on purpose."""

    def clean(value: Any) -> Any:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value

    def clean_set(params: Any) -> Any:
        if isinstance(params, dict):
            return {key: clean(value) for key, value in params.items()}
        if isinstance(params, list | tuple):
            return type(params)(clean(value) for value in params)
        return params

    if executemany and isinstance(parameters, list):
        return statement, [clean_set(params) for params in parameters]
    return statement, clean_set(parameters)


def without_nul(value: Any) -> Any:
    """A JSON value with NUL bytes dropped from every string (keys too): the engine's JSON columns see
    the value before it is serialised, when `strip_nul` would only meet the escape `\\u0000`, which
    PostgreSQL refuses in JSONB. SQLite then stores the same thing."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(item) for item in value]
    return value
