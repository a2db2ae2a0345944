"""The framework alone: a Falcon endpoint that touches no database, served by `make loadtest`
with the same gunicorn settings as the API."""
import falcon


class Hello:
    def on_get(self, req, resp):
        resp.media = {"hello": "world"}


class Health(Hello):
    pass


app = falcon.App()
app.add_route("/hello", Hello())
app.add_route("/health", Health())
