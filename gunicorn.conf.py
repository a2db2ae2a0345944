"""gunicorn settings, all from the environment. Each worker serves the ASGI app on its own event
loop (uvicorn with uvloop and httptools) and opens its own pool at ASGI startup, after the fork."""

import glob
import logging
import multiprocessing
import os
import shutil
import tempfile
import time

from api.config import Config, ConfigError

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# NOTE: one event loop per core: a worker serves many requests at once, so more workers than
# cores only add context switches (see the serving-model section of the performance docs).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "api.worker.Worker"  # uvicorn without its proxy-headers rewrite
preload_app = False  # NOTE: the pool must not cross the fork (psycopg#395)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
accesslog = None  # the app logs one line per request itself
limit_request_line = 8190  # the most gunicorn allows; the app's own limit (a 400 problem) comes first

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log_level = os.environ.get("LOG_LEVEL", "INFO").upper()  # gunicorn's own --log-level is lower case
if log_level not in LOG_LEVELS:
    raise SystemExit(
        f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (in any case), not {os.environ['LOG_LEVEL']!r}"
    )

# NOTE: a request waits at most POOL_TIMEOUT for a connection and STATEMENT_TIMEOUT_MS for a
# statement, then answers 503 itself; gunicorn must not kill or abandon the worker before that.
try:
    _app = Config.from_env()
except ConfigError as ex:
    raise SystemExit(str(ex)) from None
_longest_wait = _app.pool_timeout + _app.statement_timeout_ms / 1000
_longest_stop = _app.drain_seconds + _longest_wait  # a worker serves DRAIN_SECONDS after SIGTERM
if timeout <= _longest_wait or graceful_timeout <= _longest_stop:
    raise SystemExit(
        f"GUNICORN_TIMEOUT ({timeout}) must exceed POOL_TIMEOUT + STATEMENT_TIMEOUT_MS ({_longest_wait:g} s), "
        f"and GUNICORN_GRACEFUL_TIMEOUT ({graceful_timeout}) must exceed that + DRAIN_SECONDS ({_longest_stop:g} s)"
    )


def on_starting(server):
    _fresh_metrics_dir()
    # PERF: the request log line need not look up its caller, thread or multiprocessing name
    # (the logging HOWTO's "Optimization"), nor format the same second again: 17.5 -> 10.9 µs.
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(SecondCachingFormatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
    log = logging.getLogger("api")
    log.addHandler(handler)
    log.setLevel(log_level)


# NOTE: the workers count in prometheus_client's multiprocess mode, each in files of its own in
# PROMETHEUS_MULTIPROC_DIR, which a scrape adds up. Without the variable, the master makes a
# private folder (mode 0700) before any worker forks and removes it at exit; a folder given in
# the variable is emptied at start, so no figure of an earlier run is counted again.
_made_metrics_dir = None


def _fresh_metrics_dir():
    global _made_metrics_dir
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        _made_metrics_dir = tempfile.mkdtemp(prefix="incidents-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir
        return
    os.makedirs(given, exist_ok=True)
    for path in glob.glob(os.path.join(given, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    # NOTE: imported here, once the variable is set: prometheus_client reads it at import.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # its live gauges (the pool's) stop counting


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)


class SecondCachingFormatter(logging.Formatter):
    """logging.Formatter's own asctime ("2026-12-02 05:21:09,123"), formatting each second once."""

    _second, _text = None, ""

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        if second != self._second:
            self._second, self._text = second, time.strftime(self.default_time_format, self.converter(second))
        return self.default_msec_format % (self._text, record.msecs)
