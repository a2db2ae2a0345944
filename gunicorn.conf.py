"""gunicorn settings, all from the environment. Each worker opens its own pool after fork."""
import logging
import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
preload_app = False  # NOTE: the pool must not cross the fork (psycopg#395)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
accesslog = None  # the app logs one line per request itself


def on_starting(server):
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
    log = logging.getLogger("api")
    log.addHandler(handler)
    log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))


def post_worker_init(worker):
    from api.wsgi import db
    db.open()


def worker_exit(server, worker):
    from api.wsgi import db
    db.close()
