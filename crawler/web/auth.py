"""``WEB_TOKEN`` enforcement: an ASGI middleware in front of every route.

A request carries the token in ``Authorization: Bearer …``, ``X-Web-Token: …``, the
``web_token`` cookie, or once as ``?token=…`` (the answer then sets the cookie, so the
links of the pages work without repeating it). Anything else gets 401. Tokens are
compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "web_token"


def presented_token(request: Request) -> tuple[str, bool]:
    """The token the request carries and whether it came in the query string."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    for value in (request.headers.get("x-web-token"), request.cookies.get(COOKIE)):
        if value:
            return value, False
    query = request.query_params.get("token")
    return (query, True) if query else ("", False)


class TokenMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token, from_query = presented_token(request)
        if not hmac.compare_digest(token.encode(), self._token):
            response: Response = PlainTextResponse(
                "401 Unauthorized: this app needs its WEB_TOKEN",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="xhs"'},
            )
            await response(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                cookie = Response()
                cookie.set_cookie(COOKIE, token, httponly=True, samesite="strict")
                message.setdefault("headers", []).extend(
                    (k, v) for k, v in cookie.raw_headers if k == b"set-cookie"
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
