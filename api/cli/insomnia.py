"""`python -m api insomnia`: docs/insomnia.json, an Insomnia v4 collection built from the app's
OpenAPI document and the example requests in STEPS. Sent top to bottom against a fresh
`make run`, with the token it printed in the environment, every request succeeds."""

import dataclasses
import itertools
import json
import re

import falcon.testing

from api.app import create_app
from api.cli import PROJECT_ROOT
from api.db import Database

OUTPUT = PROJECT_ROOT / "docs" / "insomnia.json"
WORKSPACE_ID = "wrk_incidents_api"
BASE_URL = "http://127.0.0.1:8000"
SERVICE_ROUTES = {"health", "ready", "openapi.json", "docs", "metrics"}
PASSWORD = "s3cret-pass"
WEBHOOK_URL = "https://example.com/incidents-webhook"


class ExamplesMismatch(ValueError):
    """STEPS and the OpenAPI document disagree on which operations exist."""


@dataclasses.dataclass(frozen=True)
class Step:
    method: str
    path: str
    body: object = None
    query: dict = dataclasses.field(default_factory=dict)
    note: str = ""
    token: str = "{{ _.token }}"

    @property
    def request_id(self):
        return "req_" + slug(f"{self.method} {self.path} {self.note}")


def slug(text):
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


LOG_IN_RITA = Step("POST", "/auth/tokens", {"username": "rita", "password": PASSWORD}, note="as rita")
# NOTE: every request of the collection runs as the admin, so the admin is never notified
# (nobody is notified of their own action); notifications are read as rita, whose token
# Insomnia takes from a fresh login each time (a response tag with the 'always' behavior).
AS_RITA = f"{{% response 'body', '{LOG_IN_RITA.request_id}', '$.token', 'always', 60 %}}"

FIRST_EVENT_ID = (
    "{% response 'body', 'req_get_events_every_change_above_oldest_first', '$.items[0].id', 'always', 60 %}"
)
PAGERDUTY_TRIGGER = {
    "event_action": "trigger",
    "dedup_key": "srv01/mysql",
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "source": "prod-datapipe03.example.com",
        "severity": "critical",
        "component": "mysql",
        "custom_details": {"free space": "1%"},
    },
}
ALERTMANAGER_FIRING = {
    "version": "4",
    "groupKey": '{}:{alertname="HighRequestLatency"}',
    "status": "firing",
    "receiver": "incidents",
    "commonLabels": {"alertname": "HighRequestLatency", "severity": "warning"},
    "commonAnnotations": {"summary": "Request latency is high"},
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighRequestLatency", "instance": "api-1:9100", "severity": "warning"},
            "annotations": {"summary": "Request latency is high"},
            "startsAt": "2026-12-02T12:58:31.482172153Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ],
}

# The collection, in the order it runs. Ids are those a fresh `make run` hands out: the admin
# is user 1; rita 2, omar 3; category 1; incident 1 (assigned to rita, which is notification
# 1); comment 1; the admin's token 1, rita's 2 and 3 (her logins for the notifications), 4
# and 5. Each URL family ends with its destructive request, on a throwaway record.
STEPS = [
    Step("GET", "/health"),
    Step("GET", "/ready"),
    Step("GET", "/openapi.json"),
    Step("GET", "/docs"),
    Step("GET", "/metrics", note="with METRICS_TOKEN", token="{{ _.metrics_token }}"),
    Step(
        "POST",
        "/users",
        {"username": "rita", "email": "rita@example.com", "password": PASSWORD, "role": "responder"},
        note="rita, a responder: id 2",
    ),
    Step(
        "POST",
        "/users",
        {"username": "omar", "email": "omar@example.com", "password": PASSWORD},
        note="omar, a reporter: id 3",
    ),
    Step(
        "POST",
        "/users",
        {"username": "temp", "email": "temp@example.com", "password": PASSWORD},
        note="temp: id 4, deleted below",
    ),
    Step("GET", "/users", query={"role": "responder"}),
    Step("GET", "/users/2"),
    Step("PATCH", "/users/2", {"email": "rita@ops.example.com"}),
    Step(
        "PUT",
        "/users/3",
        {"username": "omar", "email": "omar.b@example.com", "role": "reporter", "active": True},
    ),
    Step("GET", "/users/2/incidents", query={"relation": "assignee"}),
    Step("POST", "/users/2/follow"),
    Step("GET", "/users/2/followers"),
    Step("GET", "/users/1/following"),
    Step("DELETE", "/users/2/follow"),
    Step("DELETE", "/users/4", note="temp"),
    Step("POST", "/categories", {"name": "payments"}, note="payments: id 1"),
    Step("POST", "/categories", {"name": "obsolete"}, note="obsolete: id 2, deleted below"),
    Step("GET", "/categories"),
    Step("GET", "/categories/1"),
    Step("PATCH", "/categories/1", {"name": "card payments"}),
    Step("GET", "/categories/1/incidents", query={"status": "open"}),
    Step("DELETE", "/categories/2", note="obsolete"),
    Step(
        "POST",
        "/incidents",
        {
            "title": "Checkout returns 502",
            "description": "Since 14:05 UTC",
            "severity": "high",
            "assignee_id": 2,
            "category_ids": [1],
        },
        note="id 1, assigned to rita",
    ),
    Step("POST", "/incidents", {"title": "Checkout is down"}, note="a duplicate: id 2, deleted below"),
    Step(
        "GET",
        "/incidents",
        query={"status": "open,in_progress", "severity": "high,critical", "sort": "-severity", "limit": "10"},
    ),
    Step("GET", "/incidents/search", query={"query": "checkout"}),
    Step("GET", "/incidents/stats", query={"days": "7"}),
    Step("GET", "/incidents/1"),
    Step("PATCH", "/incidents/1", {"status": "in_progress"}),
    Step(
        "PUT",
        "/incidents/1",
        {
            "title": "Checkout returns 502 for EU cards",
            "description": "Since 14:05 UTC, card payments only",
            "status": "in_progress",
            "severity": "critical",
            "assignee_id": 2,
            "category_ids": [1],
            "resolution": None,
        },
    ),
    Step("POST", "/incidents/1/comments", {"content": "Still failing for EU users"}),
    Step("GET", "/incidents/1/comments"),
    Step("GET", "/incidents/1/comments/1"),
    Step("POST", "/incidents/1/resolve", {"resolution": "Rolled back deploy 4711"}),
    Step("GET", "/incidents/1/history"),
    Step("DELETE", "/incidents/2", note="the duplicate"),
    Step("POST", "/alerts", PAGERDUTY_TRIGGER, note="PagerDuty trigger: incident 3"),
    Step("POST", "/alerts", {"event_action": "acknowledge", "dedup_key": "srv01/mysql"}, note="acknowledge"),
    Step("POST", "/alerts", {"event_action": "resolve", "dedup_key": "srv01/mysql"}, note="resolve"),
    Step("POST", "/alerts/alertmanager", ALERTMANAGER_FIRING, note="firing: incident 4"),
    Step(
        "POST",
        "/alerts/alertmanager",
        {**ALERTMANAGER_FIRING, "status": "resolved"},
        note="resolved",
    ),
    Step("GET", "/events", query={"limit": "100"}, note="every change above, oldest first"),
    Step("GET", "/events", query={"types": "incident.resolved,incident.deleted"}),
    Step(
        "POST",
        "/webhooks",
        {
            "url": "{{ _.webhook_url }}",
            "event_types": ["incident.created", "incident.resolved"],
            "description": "The on-call chat",
        },
        note="id 1",
    ),
    Step("POST", "/webhooks", {"url": "{{ _.webhook_url }}"}, note="every event: id 2, deleted below"),
    Step("GET", "/webhooks"),
    Step("GET", "/webhooks/1"),
    Step(
        "PATCH", "/webhooks/1", {"event_types": ["incident.created", "incident.resolved", "comment.created"]}
    ),
    Step("POST", "/webhooks/1/ping"),
    Step("POST", "/webhooks/1/rotate-secret"),
    Step("GET", "/webhooks/1/deliveries"),
    Step("POST", "/webhooks/1/redeliver", {"event_ids": [FIRST_EVENT_ID]}, note="the feed's first event"),
    Step("DELETE", "/webhooks/2"),
    Step("GET", "/notifications", query={"unread": "true"}, note="as rita", token=AS_RITA),
    Step("POST", "/notifications/1/read", note="as rita", token=AS_RITA),
    LOG_IN_RITA,
    Step("GET", "/auth/tokens"),
    Step("DELETE", "/auth/tokens/2", note="one of rita's, as rita", token=AS_RITA),
    Step("DELETE", "/auth/tokens/current", note="run it last"),
]


def openapi_document(config):
    """The app's OpenAPI document, built in-process; the pool stays closed, nothing connects."""
    app = create_app(Database(config))
    return falcon.testing.TestClient(app).simulate_get("/openapi.json").json


def template_of(document, step):
    """The documented path template `step` calls with `step.method`, or None."""
    for template, item in document["paths"].items():
        pattern = "[0-9]+".join(re.escape(part) for part in re.split(r"\{\w+\}", template))
        if re.fullmatch(pattern, step.path) and step.method.lower() in item:
            return template
    return None


def operations_of(document, steps):
    """The documented operation of each step; every documented operation must have a step."""
    templates = [template_of(document, step) for step in steps]
    unknown = [f"{step.method} {step.path}" for step, t in zip(steps, templates, strict=True) if t is None]
    if unknown:
        raise ExamplesMismatch("Examples that name no documented operation: " + ", ".join(unknown))
    documented = {(m.upper(), t) for t, item in document["paths"].items() for m in item}
    missing = documented - {(step.method, t) for step, t in zip(steps, templates, strict=True)}
    if missing:
        raise ExamplesMismatch(
            "Operations without an example in api/cli/insomnia.py STEPS: "
            + ", ".join(f"{m} {t}" for m, t in sorted(missing))
        )
    return [document["paths"][t][step.method.lower()] for step, t in zip(steps, templates, strict=True)]


def family(step):
    first = step.path.split("/")[1]
    return "Service" if first in SERVICE_ROUTES else first.capitalize()


def export(document, steps=STEPS):
    """The Insomnia v4 export: workspace, environment, a folder per URL family, a request per step."""
    resources = [workspace(), environment()]
    operations = iter(operations_of(document, steps))
    seen = set()
    for position, (name, group_steps) in enumerate(itertools.groupby(steps, family)):
        if name in seen:
            raise ExamplesMismatch(f"The steps of {name} must be consecutive in STEPS")
        seen.add(name)
        resources.append(folder(name, position))
        resources += [
            request(step, next(operations), "fld_" + slug(name), order)
            for order, step in enumerate(group_steps)
        ]
    return {
        "_type": "export",
        "__export_format": 4,
        "__export_source": "incidents-api:make insomnia",
        "resources": resources,
    }


def workspace():
    return {
        "_id": WORKSPACE_ID,
        "_type": "workspace",
        "parentId": None,
        "name": "Incidents API",
        "scope": "collection",
        "description": "Run the requests top to bottom against a fresh `make run`, with the "
        "token it printed as `token` and the server's METRICS_TOKEN as `metrics_token` in the "
        "environment.",
    }


def environment():
    return {
        "_id": "env_incidents_api",
        "_type": "environment",
        "parentId": WORKSPACE_ID,
        "name": "Base Environment",
        # NOTE: webhook URLs must reach a public address unless WEBHOOK_ALLOWED_NETWORKS says
        # otherwise; point it at your receiver.
        "data": {"base_url": BASE_URL, "token": "", "webhook_url": WEBHOOK_URL, "metrics_token": ""},
        "dataPropertyOrder": {"&": ["base_url", "token", "webhook_url", "metrics_token"]},
        "metaSortKey": 0,
    }


def folder(name, position):
    return {
        "_id": "fld_" + slug(name),
        "_type": "request_group",
        "parentId": WORKSPACE_ID,
        "name": name,
        "description": "",
        "metaSortKey": position,
    }


def request(step, operation, parent_id, position):
    headers, body = [], {}
    if step.body is not None:
        headers.append({"name": "Content-Type", "value": "application/json"})
        body = {"mimeType": "application/json", "text": json.dumps(step.body, indent=2)}
    if operation.get("security") != []:
        headers.append({"name": "Authorization", "value": f"Bearer {step.token}"})
    return {
        "_id": step.request_id,
        "_type": "request",
        "parentId": parent_id,
        "name": operation["summary"] + (f" ({step.note})" if step.note else ""),
        "description": "",
        "method": step.method,
        "url": "{{ _.base_url }}" + step.path,
        "parameters": [{"name": k, "value": str(v)} for k, v in step.query.items()],
        "headers": headers,
        "body": body,
        "authentication": {},
        "metaSortKey": position,
    }


def render(document):
    return json.dumps(export(document), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(config, path=OUTPUT):
    path.parent.mkdir(exist_ok=True)
    path.write_text(render(openapi_document(config)), encoding="utf-8")
    return path
