"""The dashboard's page and static files, and the vendored charting library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from service.dashboard import vendor
from service.errors import NotFound
from service.jobs.spec_base import PLAIN_TEXT

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page and our own files change with each release; the vendored library only with plotly.
NO_CACHE = {"Cache-Control": "no-cache"}
LONG_CACHE = {"Cache-Control": "public, max-age=86400"}
# HEAD answers like GET without the body (FileResponse sends only the headers for HEAD); a
# plain @router.get route would 405 it, which breaks link checkers and cache revalidation.
GET_AND_HEAD = ["GET", "HEAD"]


@router.api_route("/", methods=GET_AND_HEAD)
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type=MEDIA_TYPES[".html"], headers=NO_CACHE)


@router.api_route("/static/vendor/plotly.min.js", methods=GET_AND_HEAD)
def plotly() -> FileResponse:
    return FileResponse(vendor.plotly_js(), media_type=MEDIA_TYPES[".js"], headers=LONG_CACHE)


@router.api_route("/static/{path:path}", methods=GET_AND_HEAD)
def static(path: Annotated[str, PathParam(max_length=200, pattern=PLAIN_TEXT)]) -> FileResponse:
    """A file of static/ (and nothing outside it, whatever `..` or symlinks say)."""
    target = (STATIC / path).resolve()
    media_type = MEDIA_TYPES.get(target.suffix)
    if media_type is None or not target.is_relative_to(STATIC) or not target.is_file():
        raise NotFound(f"No dashboard file {path!r}")
    return FileResponse(target, media_type=media_type, headers=NO_CACHE)
