"""gunicorn's target: `gunicorn -c gunicorn.conf.py api.asgi:app`, served by the uvicorn worker.
Each worker opens its own pool at ASGI startup, after the fork."""

from api.app import create_app
from api.config import Config
from api.db import Database

app = create_app(Database(Config.from_env()), lifespan=True)
