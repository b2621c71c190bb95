"""Every error leaves the API in one format: {"error": {code, field, message, allowed}}.

User errors (`SanduError`) map to their 4xx; malformed requests to 422 naming
the field; HTTP errors of the framework (unknown path 404, wrong method 405)
to their status; anything else — a bug, a failed commit — to 500 with an
incident id that is also in the log, never a traceback and never a 2xx.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandu.context import current_request_id
from sandu.domain.errors import NotAuthenticated, SanduError, shorten
from sandu.observability import logger

log = logger("sandu.api")
WEB_PREFIX = "/app"
INCIDENT_PAGE = (
    '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>系统繁忙 · 三度</title>'
    '<p role="alert" data-incident="{incident}">系统出现异常，本次操作未生效，请稍后重试。如需帮助，请向客服提供事件编号 {incident}。</p>'
    '<p><a href="/app">返回</a></p></html>'
)

# pydantic's constraint names → what a client reads in "allowed"
_ALLOWED_KEYS = {"ge": "≥ {}", "gt": "> {}", "le": "≤ {}", "lt": "< {}", "min_length": "at least {} long", "max_length": "at most {} long",
                 "expected": "one of {}"}


def error_body(code: str, field: str | None, message: str, allowed: str | None, incident: str | None = None, rule: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "field": field, "message": message, "allowed": allowed, "rule": rule,
                      "request_id": current_request_id(), "incident": incident}}


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [shorten(str(p)) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def _allowed(ctx: dict[str, Any] | None) -> str | None:
    if not ctx:
        return None
    parts = [text.format(shorten(str(ctx[k]))) for k, text in _ALLOWED_KEYS.items() if k in ctx]
    return ", ".join(parts) or None


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(SanduError)
    async def _sandu_error(_request: Request, exc: SanduError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else {}
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if exc.code == "not_authenticated" else 'Bearer error="insufficient_user_authentication"'
        body = error_body(exc.code, exc.field, exc.message, exc.allowed, rule=getattr(exc, "rule", None))
        return JSONResponse(status_code=exc.http_status, content=body, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = _field_of(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            return JSONResponse(status_code=422, content=error_body("invalid_input", "body", "body: is not valid JSON", "a JSON object"))
        return JSONResponse(status_code=422, content=error_body("invalid_input", field, f"{field}: {_message(first)}", _allowed(first.get("ctx"))))

    allowed_methods = _AllowedMethods(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # the framework could not parse the body: malformed input like any other
            return JSONResponse(status_code=422, content=error_body("invalid_input", "body", f"body: {shorten(str(exc.detail))}", "a JSON object"))
        if exc.status_code == 413:
            return JSONResponse(status_code=413, content=error_body("too_large", "body", f"body: {shorten(str(exc.detail))}", None))
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
            headers["Allow"] = ", ".join(allowed_methods.of(request.url.path)) or headers.get("Allow", "")
        return JSONResponse(status_code=exc.status_code, content=error_body(code, None, shorten(str(exc.detail)), headers.get("Allow")),
                            headers=headers or None)

    app.add_middleware(IncidentMiddleware)


class _AllowedMethods:
    """The methods the OpenAPI document gives a path (for the Allow header of a 405)."""

    def __init__(self, app: FastAPI):
        self.app = app
        self._table: list[tuple[re.Pattern[str], set[str]]] | None = None

    def of(self, path: str) -> list[str]:
        if self._table is None:
            self._table = [(re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"), {m.upper() for m in ops})
                           for template, ops in self.app.openapi().get("paths", {}).items()]
        methods: set[str] = set()
        for pattern, ops in self._table:
            if pattern.match(path):
                methods |= ops
        return sorted(methods)


class IncidentMiddleware:
    """Answers an unexpected exception (a bug, a failed commit) with a 500 carrying an
    incident id that is also in the log — and does not re-raise it, so the server keeps
    the client's connection instead of dropping it after the response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - every unexpected error becomes an incident
            incident = uuid.uuid4().hex[:12]
            log.error("unexpected error", incident=incident, error=type(exc).__name__, exc_info=exc)
            if started:  # nothing sensible can follow a started response
                raise
            if str(scope.get("path", "")).startswith(WEB_PREFIX):  # a page, not the API: answer in the page's language
                response: Response = HTMLResponse(INCIDENT_PAGE.format(incident=incident), status_code=500)
            else:
                body = error_body("internal", None, f"internal error (incident {incident}); nothing was changed", None, incident)
                response = JSONResponse(status_code=500, content=body)
            await response(scope, receive, send)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


def head_bytes(scope: Scope) -> int:
    """The size of a request's head as it came over HTTP/1.1: the request line and every header line with its CRLF,
    and the blank line that ends them."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + (1 + len(scope["query_string"]) if scope.get("query_string") else 0)
    request_line = len(scope["method"]) + 1 + target + len(" HTTP/") + len(scope.get("http_version", "1.1")) + 2
    return request_line + sum(len(name) + 2 + len(value) + 2 for name, value in scope.get("headers") or []) + 2


class SizeLimitMiddleware:
    """Refuses, in the one error format, a request whose head (request line and headers, `head_bytes`) is larger than
    its limit with 431, and one whose body is larger than its limit with 413: at once when its Content-Length says so,
    else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_head_bytes: int, max_body_bytes: int):
        self.app = app
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = head_bytes(scope)
        if head > self.max_head_bytes:
            body = error_body("too_large", "headers", f"headers: the request line and headers are {head} bytes",
                              f"at most {self.max_head_bytes} bytes of request line and headers")
            await JSONResponse(status_code=431, content=body)(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            body = error_body("too_large", "body", f"body: larger than {self.max_body_bytes} bytes", f"at most {self.max_body_bytes} bytes")
            await JSONResponse(status_code=413, content=body)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)  # an HTTPException: FastAPI passes it on to the handler below
            return message

        await self.app(scope, counted, send)
