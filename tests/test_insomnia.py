"""docs/insomnia.json: current, complete, and every request succeeds when replayed in order
against a real gunicorn on a fresh database whose only user is the admin of `make run`."""

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from api.cli import insomnia, migrate
from api.config import Config
from tests.fix_db import scratch_database
from tests.fix_server import ROOT, gunicorn
from tests.fix_webhooks import receiver

COLLECTION = ROOT / "docs" / "insomnia.json"
RESPONSE_TAG = re.compile(r"\{% response 'body', '(?P<id>\w+)', '\$(?P<path>[\w.\[\]]+)', 'always', \d+ %\}")
JSON_PATH_STEP = re.compile(r"\.(\w+)|\[(\d+)\]")


@pytest.fixture(scope="module")
def document():
    return insomnia.openapi_document(Config(database_url="postgresql:///never-connected"))


@pytest.fixture(scope="module")
def collection():
    return json.loads(COLLECTION.read_text(encoding="utf-8"))


def in_order(resources, parent_id):
    """The requests under `parent_id` in Insomnia's order: by metaSortKey, folders depth first."""
    children = sorted(
        (r for r in resources if r.get("parentId") == parent_id), key=lambda r: r["metaSortKey"]
    )
    for child in children:
        if child["_type"] == "request":
            yield child
        elif child["_type"] == "request_group":
            yield from in_order(resources, child["_id"])


def template_of(document, url):
    path = url.removeprefix("{{ _.base_url }}")
    return next(t for t in document["paths"] if re.fullmatch(re.sub(r"\{\w+\}", "[0-9]+", t), path))


def test_collection_is_current_and_has_a_request_for_every_documented_operation(document, collection):
    assert COLLECTION.read_text(encoding="utf-8") == insomnia.render(document), "run make insomnia"
    assert collection["_type"] == "export" and collection["__export_format"] == 4
    requests = list(in_order(collection["resources"], insomnia.WORKSPACE_ID))
    documented = {(m.upper(), t) for t, item in document["paths"].items() for m in item}
    assert {(r["method"], template_of(document, r["url"])) for r in requests} == documented
    assert len({r["_id"] for r in collection["resources"]}) == len(collection["resources"])
    assert (requests[-1]["method"], requests[-1]["url"]) == ("DELETE", "{{ _.base_url }}/auth/tokens/current")


def test_public_requests_send_no_token_and_the_others_a_bearer_token(document, collection):
    environment = next(r for r in collection["resources"] if r["_type"] == "environment")
    assert environment["data"] == {
        "base_url": "http://127.0.0.1:8000",
        "token": "",
        "webhook_url": "https://example.com/incidents-webhook",
        "metrics_token": "",
    }
    for request in in_order(collection["resources"], insomnia.WORKSPACE_ID):
        operation = document["paths"][template_of(document, request["url"])][request["method"].lower()]
        headers = {h["name"]: h["value"] for h in request["headers"]}
        if operation.get("security") == []:
            assert "Authorization" not in headers, request["name"]
        elif operation.get("security") == [{"metrics_token": []}]:
            assert headers["Authorization"] == "Bearer {{ _.metrics_token }}", request["name"]
        elif "notifications" in request["url"] or re.search(r"/auth/tokens/\d+$", request["url"]):
            assert RESPONSE_TAG.fullmatch(headers["Authorization"].removeprefix("Bearer "))
        else:
            assert headers["Authorization"] == "Bearer {{ _.token }}", request["name"]
        assert ("Content-Type" in headers) == bool(request["body"]), request["name"]


def test_examples_must_match_the_documented_operations_exactly(document):
    with pytest.raises(insomnia.ExamplesMismatch, match="DELETE /auth/tokens/current"):
        insomnia.export(document, insomnia.STEPS[:-1])
    with pytest.raises(insomnia.ExamplesMismatch, match="GET /incidents/1/attachments"):
        insomnia.export(document, insomnia.STEPS + [insomnia.Step("GET", "/incidents/1/attachments")])
    with pytest.raises(insomnia.ExamplesMismatch, match="Service must be consecutive"):
        insomnia.export(document, insomnia.STEPS + [insomnia.Step("GET", "/health")])


def create_admin(database_url):
    """The token `make run` prints for the admin it creates on an empty database."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "create-admin",
            "--if-empty",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Created admin 'admin' (id 1)" in result.stdout
    return re.search(r"inc_\S+", result.stdout).group()


@pytest.fixture
def fresh_server(server_url, tmp_path):
    with scratch_database(server_url) as database_url:
        migrate.apply(database_url)
        token = create_admin(database_url)
        metrics_token = "metrics-token-of-the-replay-0123"
        with (
            receiver() as hooks,
            gunicorn(
                database_url,
                tmp_path / "gunicorn.log",
                WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                METRICS_TOKEN=metrics_token,
            ) as (base_url, _),
        ):
            yield {
                "base_url": base_url,
                "token": token,
                "webhook_url": hooks.url,
                "metrics_token": metrics_token,
            }


class Replay:
    """Sends Insomnia requests as Insomnia would: environment variables filled in, and a
    response tag resolved by sending the request it names (its 'always' behavior)."""

    def __init__(self, resources, environment):
        self.requests = {r["_id"]: r for r in resources if r["_type"] == "request"}
        self.environment = environment

    def render(self, text):
        for name, value in self.environment.items():
            text = text.replace(f"{{{{ _.{name} }}}}", value)
        text = RESPONSE_TAG.sub(lambda tag: self.response_member(tag["id"], tag["path"]), text)
        assert "{{" not in text and "{%" not in text, text
        return text

    def response_member(self, request_id, path):
        """The value at `path` (`.name` and `[index]` steps) of the response to that request."""
        _, _, received = self.send(self.requests[request_id])
        value = json.loads(received)
        for name, index in JSON_PATH_STEP.findall(path):
            value = value[name] if name else value[int(index)]
        return value

    def send(self, request):
        """(what was sent: method, URL and body; the status; the body received)."""
        url = self.render(request["url"])
        if request["parameters"]:
            url += "?" + urllib.parse.urlencode([(p["name"], p["value"]) for p in request["parameters"]])
        body = self.render(request["body"]["text"]) if request["body"] else None
        headers = {h["name"]: self.render(h["value"]) for h in request["headers"]}
        sent = urllib.request.Request(url, body and body.encode(), headers, method=request["method"])
        try:
            with urllib.request.urlopen(sent, timeout=10) as response:
                return f"{request['method']} {url} {body or ''}", response.status, response.read().decode()
        except urllib.error.HTTPError as ex:
            return f"{request['method']} {url} {body or ''}", ex.code, ex.read().decode()


def test_every_request_succeeds_in_order_on_a_fresh_server(fresh_server, collection):
    replay = Replay(collection["resources"], fresh_server)
    statuses = []
    for request in in_order(collection["resources"], insomnia.WORKSPACE_ID):
        sent, status, received = replay.send(request)
        assert 200 <= status < 300, f"{request['name']}: {sent} answered {status} {received}"
        statuses.append(status)
    assert len(statuses) == len(replay.requests) and statuses.count(204) >= 7
    unauthorized = Replay(collection["resources"], fresh_server).send(replay.requests["req_get_users"])
    assert unauthorized[1] == 401, "the last request revokes the admin's token"
