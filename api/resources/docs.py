"""GET /openapi.json and GET /docs (Swagger UI served from a package, never a CDN)."""

import importlib.util
import json
import pathlib

import falcon

from api.operations import operation

DOCS_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Incidents API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body>
</html>
"""


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
        resp.data = DOCS_PAGE
