"""gunicorn's target: `gunicorn -c gunicorn.conf.py api.wsgi:app`. The pool opens after fork."""
from api.app import create_app
from api.config import Config
from api.db import Database

config = Config.from_env()
db = Database(config)
app = create_app(db)
