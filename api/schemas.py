"""JSON Schemas of request bodies: one source for validation and the OpenAPI document."""

ROLES = ["reporter", "responder", "admin"]
STATUSES = ["open", "in_progress", "resolved", "closed"]
SEVERITIES = ["low", "medium", "high", "critical"]
SOURCES = ["api", "alerts", "alertmanager"]
DEDUP_KEY_MAX_LENGTH = 512
MAX_ID = 2**63 - 1

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
NULLABLE_ID = {**ID, "type": ["integer", "null"]}
USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,50}$"}
EMAIL = {"type": "string", "maxLength": 254, "pattern": r"^[^@\s]+@[^@\s]+$"}
PASSWORD = {"type": "string", "minLength": 8, "maxLength": 128}
ROLE = {"enum": ROLES}
TITLE = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}
DESCRIPTION = {"type": "string", "maxLength": 10000}
RESOLUTION = {"type": ["string", "null"], "maxLength": 10000}
CATEGORY_IDS = {"type": "array", "items": ID, "uniqueItems": True, "maxItems": 50}
CATEGORY_NAME = {"type": "string", "minLength": 1, "maxLength": 50, "pattern": r"\S"}


def _object(properties, required=()):
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


USER_FIELDS = {
    "username": USERNAME,
    "email": EMAIL,
    "password": PASSWORD,
    "role": ROLE,
    "active": {"type": "boolean"},
}
# Changing one's own password needs the current one too (checked by the responder).
USER_EDIT_FIELDS = {**USER_FIELDS, "current_password": {"type": "string", "maxLength": 1024}}
USER_CREATE = _object(USER_FIELDS, ["username", "email", "password"])
USER_REPLACE = _object(USER_EDIT_FIELDS, ["username", "email", "role", "active"])
USER_PATCH = _object(USER_EDIT_FIELDS)

TOKEN_CREATE = _object(
    {"username": {"type": "string", "maxLength": 254}, "password": {"type": "string", "maxLength": 1024}},
    ["username", "password"],
)

INCIDENT_FIELDS = {
    "title": TITLE,
    "description": DESCRIPTION,
    "status": {"enum": STATUSES},
    "severity": {"enum": SEVERITIES},
    "assignee_id": NULLABLE_ID,
    "category_ids": CATEGORY_IDS,
    "resolution": RESOLUTION,
}
INCIDENT_CREATE = _object(
    {k: v for k, v in INCIDENT_FIELDS.items() if k not in ("status", "resolution")}, ["title"]
)
INCIDENT_REPLACE = _object(INCIDENT_FIELDS, INCIDENT_FIELDS)
INCIDENT_PATCH = _object(INCIDENT_FIELDS)

RESOLVE = _object({"resolution": RESOLUTION})

COMMENT_CREATE = _object(
    {"content": {"type": "string", "minLength": 1, "maxLength": 10000, "pattern": r"\S"}}, ["content"]
)

CATEGORY_CREATE = _object({"name": CATEGORY_NAME}, ["name"])
CATEGORY_PATCH = _object({"name": CATEGORY_NAME})


# Response bodies, for the OpenAPI document.
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _record(properties):
    return {"type": "object", "properties": properties, "required": list(properties)}


USER = _record(
    {
        "id": ID,
        "username": USERNAME,
        "email": EMAIL,
        "role": ROLE,
        "active": {"type": "boolean"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)
TOKEN = _record(
    {
        "token": {"type": "string", "pattern": "^inc_"},
        "id": ID,
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP,
        "user": USER,
    }
)
TOKEN_INFO = _record(
    {"id": ID, "created_at": TIMESTAMP, "expires_at": TIMESTAMP, "current": {"type": "boolean"}}
)
CATEGORY = _record({"id": ID, "name": CATEGORY_NAME, "created_at": TIMESTAMP})
INCIDENT = _record(
    {
        "id": ID,
        "title": TITLE,
        "description": DESCRIPTION,
        "status": {"enum": STATUSES},
        "severity": {"enum": SEVERITIES},
        "reporter_id": ID,
        "assignee_id": NULLABLE_ID,
        "categories": {"type": "array", "items": _record({"id": ID, "name": CATEGORY_NAME})},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "acknowledged_at": NULLABLE_TIMESTAMP,
        "resolved_at": NULLABLE_TIMESTAMP,
        "resolution": RESOLUTION,
        "version": {"type": "integer", "minimum": 1},
        "dedup_key": {"type": ["string", "null"], "maxLength": DEDUP_KEY_MAX_LENGTH},
        "source": {"enum": SOURCES},
        "allowed_transitions": {"type": "array", "items": {"enum": STATUSES}},
    }
)
SEARCH_ITEM = {
    **INCIDENT,
    "properties": {**INCIDENT["properties"], "rank": {"type": "number"}, "snippet": {"type": "string"}},
    "required": INCIDENT["required"] + ["rank", "snippet"],
}
COMMENT = _record(
    {"id": ID, "incident_id": ID, "author_id": ID, "content": {"type": "string"}, "created_at": TIMESTAMP}
)
HISTORY_ENTRY = _record(
    {
        "id": ID,
        "incident_id": ID,
        "actor_id": ID,
        "action": {
            "enum": [
                "created",
                "updated",
                "status_changed",
                "assigned",
                "categorized",
                "commented",
                "resolved",
            ]
        },
        "changes": {
            "type": "object",
            "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2},
        },
        "created_at": TIMESTAMP,
    }
)
NOTIFICATION = _record(
    {
        "id": ID,
        "event": {
            "enum": ["assigned", "resolved", "followed_reported", "followed_resolved", "webhook_disabled"]
        },
        "incident_id": NULLABLE_ID,
        "actor_id": NULLABLE_ID,
        "webhook_id": NULLABLE_ID,
        "read": {"type": "boolean"},
        "created_at": TIMESTAMP,
    }
)
HISTORY_ACTIONS = HISTORY_ENTRY["properties"]["action"]["enum"]
EVENT_TYPES = [
    *(f"incident.{action}" for action in HISTORY_ACTIONS if action != "commented"),
    "comment.created",
    "incident.deleted",
]
_EVENT_INCIDENT = {
    **INCIDENT,
    "properties": {k: v for k, v in INCIDENT["properties"].items() if k != "allowed_transitions"},
    "required": [k for k in INCIDENT["required"] if k != "allowed_transitions"],
}
EVENT = _record(
    {
        "id": {"type": "string", "pattern": "^evt_[0-9]+$"},
        "position": ID,
        "type": {"enum": EVENT_TYPES},
        "occurred_at": TIMESTAMP,
        "actor_id": ID,
        "incident_id": ID,
        "incident_version": {"type": "integer", "minimum": 1},
        "data": {
            "type": "object",
            "properties": {
                "incident": _EVENT_INCIDENT,
                "changes": HISTORY_ENTRY["properties"]["changes"],
                "comment": COMMENT,
            },
            "required": ["incident"],
            "additionalProperties": False,
        },
    }
)
EVENT_DATA_MEMBERS = {"comment.created": ("incident", "comment"), "incident.deleted": ("incident",)}


def event_of(event_type):
    """An event of one type, with the `data` members that type carries (the others: the incident
    and its changes)."""
    members = EVENT_DATA_MEMBERS.get(event_type, ("incident", "changes"))
    data = EVENT["properties"]["data"]
    data = {**data, "properties": {m: data["properties"][m] for m in members}, "required": list(members)}
    return {**EVENT, "properties": {**EVENT["properties"], "type": {"const": event_type}, "data": data}}


EVENT_PAGE = _record(
    {"items": {"type": "array", "items": EVENT}, "next_cursor": {"type": "string", "pattern": "^[0-9]+$"}}
)

WEBHOOK_URL = {"type": "string", "minLength": 1, "maxLength": 2048}
WEBHOOK_EVENT_TYPES = {"type": "array", "items": {"enum": EVENT_TYPES}, "minItems": 1, "uniqueItems": True}
WEBHOOK_DESCRIPTION = {"type": ["string", "null"], "maxLength": 1000}
WEBHOOK_CREATE = _object(
    {"url": WEBHOOK_URL, "event_types": WEBHOOK_EVENT_TYPES, "description": WEBHOOK_DESCRIPTION}, ["url"]
)
WEBHOOK_PATCH = _object(
    {
        "url": WEBHOOK_URL,
        "event_types": WEBHOOK_EVENT_TYPES,
        "description": WEBHOOK_DESCRIPTION,
        "active": {"type": "boolean"},
        "cursor": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    }
)
EVENT_ID = {"type": "string", "pattern": "^evt_[1-9][0-9]{0,18}$"}
REDELIVER = _object(
    {"event_ids": {"type": "array", "items": EVENT_ID, "minItems": 1, "maxItems": 1000}}, ["event_ids"]
)
WEBHOOK = _record(
    {
        "id": ID,
        "url": WEBHOOK_URL,
        "event_types": WEBHOOK_EVENT_TYPES,
        "description": WEBHOOK_DESCRIPTION,
        "active": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"]},
        "cursor": {"type": "integer", "minimum": 0},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }
)
WEBHOOK_SECRET = _record({"secret": {"type": "string", "pattern": "^whsec_"}})
WEBHOOK_CREATED = _record({**WEBHOOK["properties"], **WEBHOOK_SECRET["properties"]})
PING_RESULT = _record(
    {
        "delivered": {"type": "boolean"},
        "status_code": {"type": ["integer", "null"]},
        "duration_ms": {"type": "number"},
        "error": {"type": ["string", "null"]},
    }
)
DELIVERY = _record(
    {
        "id": ID,
        "event_id": {"type": "string"},
        "position": {"type": ["integer", "null"]},
        "attempt": {"type": "integer", "minimum": 1},
        "status_code": {"type": ["integer", "null"]},
        "error": {"type": ["string", "null"]},
        "duration_ms": {"type": "number"},
        "created_at": TIMESTAMP,
    }
)
PING_MESSAGE = _record(
    {
        "id": {"type": "string", "pattern": "^msg_ping_"},
        "type": {"const": "webhook.ping"},
        "occurred_at": TIMESTAMP,
        "actor_id": ID,
        "data": _record({"webhook_id": ID}),
    }
)
QUEUED = _record({"queued": {"type": "integer", "minimum": 0}})
HEALTH = _record({"status": {"const": "ok"}})
READY = _record({"status": {"const": "ok"}, "database": {"const": "ok"}})
_FIGURES = {
    "mean": {"type": ["number", "null"]},
    "p50": {"type": ["number", "null"]},
    "p90": {"type": ["number", "null"]},
}
_DURATIONS = _record({**_FIGURES, "by_severity": _record({s: _record(_FIGURES) for s in SEVERITIES})})
_COUNT = {"type": "integer", "minimum": 0}
STATS = _record(
    {
        "by_status": _record({s: _COUNT for s in STATUSES}),
        "by_severity": _record({s: _COUNT for s in SEVERITIES}),
        "mtta_seconds": _DURATIONS,
        "mttr_seconds": _DURATIONS,
        "workload": {
            "type": "array",
            "items": _record({"user_id": ID, "username": USERNAME, "open": _COUNT, "in_progress": _COUNT}),
        },
        "daily": {
            "type": "array",
            "items": _record(
                {"date": {"type": "string", "format": "date"}, "opened": _COUNT, "resolved": _COUNT}
            ),
        },
    }
)
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["detail"],
            },
        },
        "allowed_transitions": {"type": "array", "items": {"enum": STATUSES}},
    },
}


# Alert intake. Senders add members of their own, so these bodies accept members they do not
# use (no additionalProperties: false), while the members they use are validated as usual.
DEDUP_KEY = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}
_TEXT = {"type": "string", "maxLength": 10000}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
PAGERDUTY_EVENT = {
    "type": "object",
    "properties": {
        "routing_key": {"type": "string", "maxLength": 1024},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": DEDUP_KEY,
        "payload": {
            "type": "object",
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"\S"},
                "source": {"type": "string", "minLength": 1, "maxLength": 1024},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "component": _TEXT,
                "group": _TEXT,
                "class": _TEXT,
                "custom_details": {"description": "any JSON value, shown in the description"},
            },
            "required": ["summary", "source", "severity"],
        },
    },
    "required": ["event_action"],
    "allOf": [
        {
            "if": {"properties": {"event_action": {"const": "trigger"}}, "required": ["event_action"]},
            "then": {"required": ["payload"]},
        },
        {
            "if": {
                "properties": {"event_action": {"enum": ["acknowledge", "resolve"]}},
                "required": ["event_action"],
            },
            "then": {"required": ["dedup_key"]},
        },
    ],
}
ALERTMANAGER_ALERT = {
    "type": "object",
    "properties": {
        "status": {"enum": ["firing", "resolved"]},
        "labels": _STRINGS,
        "annotations": _STRINGS,
        "startsAt": {"type": "string", "format": "date-time"},
        "endsAt": {"type": "string", "format": "date-time"},
        "fingerprint": {"type": "string"},
    },
    "required": ["labels"],
}
ALERTMANAGER_NOTIFICATION = {
    "type": "object",
    "properties": {
        "version": {"const": "4"},
        "groupKey": {"type": "string", "minLength": 1, "maxLength": DEDUP_KEY_MAX_LENGTH},
        "status": {"enum": ["firing", "resolved"]},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "commonLabels": _STRINGS,
        "commonAnnotations": _STRINGS,
        "alerts": {"type": "array", "items": ALERTMANAGER_ALERT, "minItems": 1},
    },
    "required": ["version", "groupKey", "status", "alerts"],
}
ALERT_RESULT = _record(
    {
        "incident_id": {**ID, "type": ["integer", "null"]},
        "action": {"enum": ["created", "updated", "resolved", "ignored"]},
        "dedup_key": {"type": "string"},
    }
)


def page_of(item):
    return _record({"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}})


INCIDENT_PAGE = page_of(INCIDENT)
