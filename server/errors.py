"""Every error as the client expects it: an HTML page, an htmx fragment, or JSON; in the user's language, no traces."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from server.db import WriteQueueTimeout
from server.i18n import N_, gettext as _
from server.security import SESSION_EXPIRED_KEY
from server.web import is_htmx, page_context, use_request_locale

logger = logging.getLogger("shanzhi.errors")

JSON_PREFIXES = ("/api/", "/healthz", "/sync/push", "/sync/pull", "/sync/photos/", "/open311/")
# Machine-readable codes of JSON errors (docs/sync.md).
JSON_CODES = {400: "malformed", 401: "not_signed_in", 403: "forbidden", 404: "not_found", 413: "batch_too_large", 429: "too_many_requests"}
CSRF_DETAIL = "CSRF token verification failed"

# (title, message) per status; msgids, translated when the response is built.
MESSAGES: dict[int, tuple[str, str]] = {
    400: (N_("Bad request"), N_("What was sent could not be understood. Please check the form and try again.")),
    401: (N_("Please sign in"), N_("This page is for signed-in users.")),
    403: (N_("Not allowed"), N_("Your account does not have access to this page.")),
    404: (N_("Page not found"), N_("There is no page at this address. It may have moved, or the link is mistyped.")),
    405: (N_("Not available"), N_("This action is not available here.")),
    413: (N_("Too large"), N_("What you sent is too large.")),
    429: (N_("Too many requests"), N_("Please wait a minute and try again.")),
    500: (N_("Something went wrong"), N_("The server ran into a problem. Nothing you sent was lost; please try again shortly.")),
    503: (N_("Temporarily unavailable"), N_("The service is busy or under maintenance. Please try again shortly.")),
}
CSRF_MESSAGE = (
    N_("Page expired"),
    N_("This form is out of date. Go back, refresh the page and submit again; what you typed is still in the form."),
)


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(JSON_PREFIXES):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _texts(status: int, detail: str) -> tuple[str, str]:
    if status == 403 and detail == CSRF_DETAIL:
        title, message = CSRF_MESSAGE
    else:
        title, message = MESSAGES.get(status, MESSAGES[500] if status >= 500 else MESSAGES[400])
    return _(title), _(message)


def error_response(request: Request, status: int, detail: str = "") -> Response:
    use_request_locale(request)  # before translating the texts below
    title, message = _texts(status, detail)
    if wants_json(request):
        return Response(
            {"status_code": status, "code": JSON_CODES.get(status, "error"), "error": title, "detail": message, "message": message},
            status_code=status,
            media_type=MediaType.JSON,
        )
    if status == 401 and request.method in {"GET", "HEAD"}:
        return login_redirect(request)
    template = "errors/_fragment.html" if is_htmx(request) else "errors/error.html"
    return Template(
        template_name=template,
        context=page_context(request, status_code=status, title=title, message=message),
        status_code=status,
    )


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?next={quote(target, safe='/')}"
    if request.scope.get(SESSION_EXPIRED_KEY):
        location += "&expired=1"
    if is_htmx(request):
        # htmx would swap a redirect's target into the page; make it navigate instead.
        return Response(content=None, status_code=401, headers={"HX-Redirect": location})
    return Redirect(path=location, status_code=303)


def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException) and not wants_json(request):
        return error_response(request, 401)
    response = error_response(request, exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def busy_handler(request: Request, exc: Exception) -> Response:
    """Other writers held the database for too long: ask the client to come back, never a 500."""
    logger.warning("write queue timeout on %s %s", request.method, request.url.path)
    response = error_response(request, 503)
    response.headers["retry-after"] = "5"
    return response


def internal_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, HTTP_500_INTERNAL_SERVER_ERROR)


exception_handlers = {
    HTTPException: http_exception_handler,
    WriteQueueTimeout: busy_handler,
    Exception: internal_error_handler,
}
