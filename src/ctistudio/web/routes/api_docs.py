"""``GET /docs``: the OpenAPI reference in Swagger UI, served from this server (works offline).

FastAPI's own /docs page loads Swagger UI from a CDN and starts it with an inline script; both fail for a
local-first tool behind a strict Content-Security-Policy (``script-src 'self'``). Swagger UI is vendored
under ``static/vendor/swagger-ui`` (swagger-ui-dist, Apache-2.0) and started by ``static/api-docs.js``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ctistudio API</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/openapi.json"></div>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/docs", response_class=HTMLResponse)
async def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE)
