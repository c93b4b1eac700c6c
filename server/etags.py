"""Revalidation of saved pages: every HTML page gets a weak ETag (a hash of its body); a GET that
sends the same tag back in If-None-Match gets `304 Not Modified` and no body. Pages stay `no-store`
for the browser's own cache (they may hold personal data); the service worker keeps the copies it
saved (and drops them at sign-out) and revalidates them with the tag (pwa/service-worker.js), so an
unchanged page costs a few hundred bytes instead of the page."""

from __future__ import annotations

import hashlib

from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# Headers a 304 carries (RFC 9110 15.4.5): the validators and caching metadata, and any cookie the
# response set (a session renewed on this request must still reach the browser).
KEPT_ON_304 = {b"etag", b"cache-control", b"vary", b"set-cookie", b"date", b"expires", b"content-location"}


def _matches(if_none_match: str, etag: str) -> bool:
    wanted = {tag.strip() for tag in if_none_match.split(",")}
    return etag in wanted or "*" in wanted


class PageETagMiddleware:
    """ASGI middleware: weak ETags and 304s for HTML pages answered 200 to GET or HEAD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers.from_scope(scope).get("if-none-match", "")
        start: Message | None = None
        passing = False
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start, passing
            if message["type"] == "http.response.start":
                content_type = MutableScopeHeaders.from_message(message).get("content-type", "")
                if message["status"] != 200 or not content_type.startswith("text/html"):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if passing or start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            etag = f'W/"{hashlib.sha256(body).hexdigest()[:24]}"'
            headers = [*start.get("headers", []), (b"etag", etag.encode())]
            if if_none_match and _matches(if_none_match, etag):
                kept = [(k, v) for k, v in headers if k.lower() in KEPT_ON_304]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, buffered)
