"""What every HTTP request meets before routing: HEAD answered like GET without a body (RFC 9110: link
checkers and monitors use it), and an address with a NUL byte refused with a plain 400 (it names no
file and no record, and some drivers would fail on it)."""

from __future__ import annotations

from typing import Any

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


def edge(app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if _has_nul(scope):
            await _bad_request(send)
            return
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
