"""The app factory and its routes: server-rendered pages over the store, read-only.

``create_app(config)`` builds a Starlette app whose lifespan opens the configured
database (``MONGO_URI`` or the embedded server, started or joined as the crawler does)
and closes it again. Only GET (and HEAD) routes exist: nothing can write. Every answer
carries a Content-Security-Policy of ``'self'`` only, so a page cannot make the browser
fetch anything from another host (images of notes come from IMAGES_STORE through
``/images/…``, plotly.js from the installed plotly package).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from crawler.core.enrichment_state import Backend, EnrichmentStatus
from crawler.report import REPORT_JS_SOURCE
from crawler.web import reads
from crawler.web.auth import TokenMiddleware
from crawler.web.charts import NOTE_SERIES, USER_SERIES, time_chart
from crawler.web.config import WebConfig
from crawler.web.files import resolve_inside
from crawler.web.listing import NoteListing
from crawler.web.queries import SORTS, BadQuery, NoteQuery
from crawler.web.quota import quota_view

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(
                    [
                        (b"content-security-policy", CSP.encode()),
                        (b"referrer-policy", b"no-referrer"),
                        (b"x-content-type-options", b"nosniff"),
                    ]
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _fmt_dt(value: Any) -> str:
    if not isinstance(value, datetime):
        return "—"
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _fmt_num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["dt"] = _fmt_dt
    templates.env.filters["num"] = _fmt_num
    return templates


def create_app(config: WebConfig) -> Starlette:
    config.check()
    templates = _templates()
    listing = NoteListing()

    def db(request: Request) -> Any:
        return request.app.state.db

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    async def home(request: Request) -> Response:
        return RedirectResponse("/notes", status_code=302)

    async def notes(request: Request) -> Response:
        await listing.refresh(db(request))
        common = {
            "choices": listing.choices,
            "statuses": [s.value for s in EnrichmentStatus],
            "backends": [b.value for b in Backend],
            "sorts": SORTS,
        }
        try:
            query = NoteQuery.parse(request.query_params)
        except BadQuery as exc:
            return render(request, "notes.html", 400, error=str(exc), query=NoteQuery(), **common)
        page = await listing.page(db(request), query, config.page_size)
        return render(request, "notes.html", query=query, error=None, **page, **common)

    async def note(request: Request) -> Response:
        data = await reads.note_page(db(request), request.path_params["note_id"])
        if data is None:
            raise HTTPException(404, "no such note")
        note = data["note"]
        result = (note.get("enrichment") or {}).get("result") or {}
        by_index = {i.get("index"): i for i in result.get("images") or [] if isinstance(i, dict)}
        images = [
            {**img, "analysis": by_index.get(k, {}), "index": k}
            for k, img in enumerate(note.get("images") or [])
        ]
        chart = time_chart("Interactions over time", data["stats"], "crawled_at", NOTE_SERIES)
        return render(
            request, "note.html", note=note, result=result, images=images, chart=chart,
            stats=data["stats"], thread=data["thread"],
        )  # fmt: skip

    async def image(request: Request) -> Response:
        path = resolve_inside(config.images_store, request.path_params["path"])
        if path is None:
            raise HTTPException(404, "no such image in IMAGES_STORE")
        return FileResponse(path)

    async def creators(request: Request) -> Response:
        try:
            page = max(1, int(request.query_params.get("page") or 1))
        except ValueError:
            raise HTTPException(400, "page is not a number") from None
        data = await reads.creators_page(db(request), page, config.page_size)
        return render(request, "creators.html", page=page, **data)

    async def creator(request: Request) -> Response:
        data = await reads.creator_page(db(request), request.path_params["user_id"])
        if data is None:
            raise HTTPException(404, "no such creator")
        chart = time_chart("Growth", data["stats"], "crawled_at", USER_SERIES)
        return render(request, "creator.html", chart=chart, **data)

    async def runs(request: Request) -> Response:
        records = await reads.runs_page(db(request))
        for r in records:
            name = f"run-{r.get('_id')}.html"
            ok = config.report_dir is not None and resolve_inside(config.report_dir, name)
            r["report"] = name if ok else None
        return render(request, "runs.html", runs=records)

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        path = resolve_inside(config.report_dir, name) if config.report_dir else None
        if path is None or path.suffix != ".html":
            raise HTTPException(404, "no such report")
        return FileResponse(path, media_type="text/html")

    async def quota(request: Request) -> Response:
        state, updated_at = await reads.quota_state(db(request))
        view = quota_view(state, datetime.now(UTC))
        return render(request, "quota.html", updated_at=updated_at, **view)

    async def plotly_js(request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    async def report_js(request: Request) -> Response:
        return FileResponse(REPORT_JS_SOURCE, media_type="text/javascript")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from pipelines.mongo import close_databases, open_database

        _, app.state.db = await open_database(config.mongo)
        listing.start(app.state.db)
        try:
            yield
        finally:
            await listing.close()
            await close_databases()

    middleware = [Middleware(SecurityHeaders)]
    if config.token_required:
        middleware.append(Middleware(TokenMiddleware, token=config.token))
    routes = [
        Route("/", home),
        Route("/notes", notes),
        Route("/notes/{note_id}", note),
        Route("/images/{path:path}", image),
        Route("/creators", creators),
        Route("/creators/{user_id}", creator),
        Route("/runs", runs),
        Route("/reports/plotly.min.js", plotly_js),  # the scripts beside the run reports
        Route("/reports/report.js", report_js),
        Route("/reports/{name:path}", report),
        Route("/quota", quota),
        Route("/static/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.config = config
    return app
