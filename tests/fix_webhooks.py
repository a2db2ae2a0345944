"""Webhooks in tests: a real receiver on loopback (an HTTP server in a thread that records every
request and answers with the statuses it is told to, 200 by default, optionally after a
delay), a client of an app that may deliver to loopback, and subscribing."""

import contextlib
import dataclasses
import http.server
import ipaddress
import threading
import time

import pytest

from tests.fix_app import client_of

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclasses.dataclass
class Received:
    path: str
    headers: dict  # lower-case names
    body: bytes
    status: int  # the answer
    arrived: float  # time.monotonic() when the request arrived


class Receiver:
    def __init__(self):
        self.received = []
        self.arrivals = 0  # requests that arrived, answered or not yet
        self.statuses = []  # answers for the next requests, in order; then `default_status`
        self.default_status = 200
        self.delay = 0.0
        self.url = None
        self._lock = threading.Lock()

    def answer(self):
        with self._lock:
            return self.statuses.pop(0) if self.statuses else self.default_status

    def record(self, received):
        with self._lock:
            self.received.append(received)

    def wait_for(self, count, seconds=20.0, accepted=False):
        """The requests received (with `accepted`, those answered 2xx), once there are at least
        `count` (or an AssertionError)."""
        deadline = time.monotonic() + seconds
        while len(got := self.got(accepted)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(got)} requests, not {count}")
            time.sleep(0.02)
        return got

    def got(self, accepted=False):
        with self._lock:
            return [r for r in self.received if not accepted or 200 <= r.status < 300]


@contextlib.contextmanager
def receiver():
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.arrivals += 1
            time.sleep(state.delay)
            status = state.answer()
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.record(Received(self.path, headers, body, status, arrived))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.url + "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hook_receiver():
    with receiver() as state:
        yield state


@pytest.fixture(scope="session")
def loopback_client(config):
    """A client of the app that lets webhooks reach loopback, as WEBHOOK_ALLOWED_NETWORKS may."""
    with client_of(dataclasses.replace(config, webhook_allowed_networks=LOOPBACK)) as client:
        yield client


def subscribe(client, admin, url, **fields):
    """A new webhook, as POST /webhooks answers it (with its secret)."""
    result = client.simulate_post("/webhooks", json={"url": url, **fields}, headers=admin["headers"])
    assert result.status_code == 201, result.json
    return result.json
