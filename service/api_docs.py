"""The API's documentation pages, /docs (Swagger UI) and /redoc, with no CDN behind them.

FastAPI's own pages load their JavaScript and CSS from a CDN, so without internet /docs is a
blank page. These answer the same HTML with the assets served from the installed
`fastapi-offline` package (its static/ holds Swagger UI's bundle and CSS, ReDoc's standalone
bundle and a favicon). There is no /docs/oauth2-redirect: the API's only scheme is a bearer
token pasted into Swagger UI's Authorize dialog, not an OAuth2 flow.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from service.errors import NotFound

# Under /static/ so the token check lets the assets through as it does the dashboard's files.
ASSETS_URL = "/static/docs"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The assets change only with the installed package, like the dashboard's vendored plotly.
LONG_CACHE = {"Cache-Control": "public, max-age=86400"}
# Swagger UI's default validatorUrl points at an online validator; nothing may leave the machine.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
# ReDoc's bundle still fetches its sidebar logo from its vendor's CDN (and hides it when that
# fails): the policy keeps the browser from even asking. Inline script and styles: the pages'
# start-up script and the styles both UIs inject; blob: for ReDoc's search worker.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
    ]
)
GET_AND_HEAD = ["GET", "HEAD"]


@lru_cache(maxsize=1)
def assets_dir() -> Path:
    """fastapi-offline's static/, checked once for the files the pages name."""
    path = Path(str(resources.files("fastapi_offline") / "static"))
    missing = [name for name in ASSETS if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the installed fastapi-offline lacks {missing} in {path}")
    return path


def _root(request: Request) -> str:
    """The mount prefix under a proxy (ASGI root_path), as FastAPI's own pages honour it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def install(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets. Build the app with docs_url=None and redoc_url=None,
    and call this before a router with a catch-all under /static/ (the dashboard's): routes
    match in order, and that one would answer 404 for the assets.

    The assets are a route rather than a StaticFiles mount so that the HTTP metrics label them
    by template (a mount sets no route in the scope) and a missing one is a problem+json 404."""
    title = app.title
    openapi_url = app.openapi_url or "/openapi.json"
    router = APIRouter(include_in_schema=False)

    @router.api_route("/docs", methods=GET_AND_HEAD)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return _local_only(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @router.api_route("/redoc", methods=GET_AND_HEAD)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return _local_only(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )

    @router.api_route(ASSETS_URL + "/{name}", methods=GET_AND_HEAD)
    def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"No API docs file {name!r}")
        return FileResponse(assets_dir() / name, media_type=media_type, headers=LONG_CACHE)

    assets_dir()  # a broken install fails at start-up, not at someone's first look at /docs
    app.include_router(router)
