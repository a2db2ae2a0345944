"""gunicorn settings, all from the environment. Each worker opens its own pool after fork."""
import logging
import multiprocessing
import os

from api.config import Config

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# NOTE: sync, not gthread: gthread keeps connections alive, but each stays with the worker that
# accepted it, so a few clients' connections can pile onto one single-threaded worker while
# another idles (GET /incidents/{id} swung between 1,800 and 3,500 req/s from run to run).
worker_class = "sync"
preload_app = False  # NOTE: the pool must not cross the fork (psycopg#395)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
accesslog = None  # the app logs one line per request itself
limit_request_line = 8190  # the most gunicorn allows; the app's own limit (a 400 problem) comes first

# NOTE: a request waits at most POOL_TIMEOUT for a connection and STATEMENT_TIMEOUT_MS for a
# statement, then answers 503 itself; gunicorn must not kill or abandon the worker before that.
_app = Config.from_env()
_longest_wait = _app.pool_timeout + _app.statement_timeout_ms / 1000
if min(timeout, graceful_timeout) <= _longest_wait:
    raise SystemExit(f"GUNICORN_TIMEOUT ({timeout}) and GUNICORN_GRACEFUL_TIMEOUT ({graceful_timeout}) "
                     f"must exceed POOL_TIMEOUT + STATEMENT_TIMEOUT_MS ({_longest_wait:g} s)")


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
