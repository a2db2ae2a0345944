"""The framework alone: a Falcon ASGI endpoint that touches no database, served by
`make loadtest` with the same gunicorn settings (and so the same worker class) as the API."""

import falcon.asgi


class Hello:
    async def on_get(self, req, resp):
        resp.media = {"hello": "world"}


class Health(Hello):
    pass


app = falcon.asgi.App()
app.add_route("/hello", Hello())
app.add_route("/health", Health())
