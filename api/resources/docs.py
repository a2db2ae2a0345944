"""GET /openapi.json and GET /docs (Swagger UI served from a package, never a CDN)."""

import base64
import hashlib
import importlib.util
import json
import pathlib

import falcon

from api.operations import operation

BOOT_SCRIPT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});'
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Incidents API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>{BOOT_SCRIPT}</script>
</body>
</html>
""".encode()
# Scripts and styles from this server only, the one inline script by its hash (Swagger UI
# sets inline styles itself, and draws its icons as data: images).
DOCS_CSP = (
    "default-src 'self'; "
    f"script-src 'self' 'sha256-{base64.b64encode(hashlib.sha256(BOOT_SCRIPT.encode()).digest()).decode()}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def swagger_ui_dir():
    # NOTE: find_spec locates the package without importing it (its __init__ imports Django).
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None:
        raise RuntimeError("Swagger UI assets are missing: pip install --no-deps -r requirements-assets.txt")
    return pathlib.Path(spec.submodule_search_locations[0]) / "static/drf_spectacular_sidecar/swagger-ui-dist"


class OpenAPIDocument:
    auth_required = False

    def __init__(self):
        self.body = b""

    @operation("Get the OpenAPI document", response={"type": "object"})
    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body

    def publish(self, document):
        self.body = json.dumps(document).encode()


class DocsPage:
    auth_required = False

    @operation("Browse the API documentation", response={"type": "string"}, media_type="text/html")
    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Content-Security-Policy", DOCS_CSP)
        resp.data = DOCS_PAGE
