"""JSON Schemas of request bodies: one source for validation and the OpenAPI document."""

ROLES = ["reporter", "responder", "admin"]
STATUSES = ["open", "in_progress", "resolved", "closed"]
SEVERITIES = ["low", "medium", "high", "critical"]
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
    return {"type": "object", "properties": properties,
            "required": list(required), "additionalProperties": False}


USER_FIELDS = {"username": USERNAME, "email": EMAIL, "password": PASSWORD,
               "role": ROLE, "active": {"type": "boolean"}}
USER_CREATE = _object(USER_FIELDS, ["username", "email", "password"])
USER_REPLACE = _object(USER_FIELDS, ["username", "email", "role", "active"])
USER_PATCH = _object(USER_FIELDS)

TOKEN_CREATE = _object({"username": {"type": "string", "maxLength": 254},
                        "password": {"type": "string", "maxLength": 1024}},
                       ["username", "password"])

INCIDENT_FIELDS = {"title": TITLE, "description": DESCRIPTION, "status": {"enum": STATUSES},
                   "severity": {"enum": SEVERITIES}, "assignee_id": NULLABLE_ID,
                   "category_ids": CATEGORY_IDS, "resolution": RESOLUTION}
INCIDENT_CREATE = _object({k: v for k, v in INCIDENT_FIELDS.items()
                           if k not in ("status", "resolution")}, ["title"])
INCIDENT_REPLACE = _object(INCIDENT_FIELDS, INCIDENT_FIELDS)
INCIDENT_PATCH = _object(INCIDENT_FIELDS)

RESOLVE = _object({"resolution": RESOLUTION})

COMMENT_CREATE = _object({"content": {"type": "string", "minLength": 1, "maxLength": 10000,
                                      "pattern": r"\S"}}, ["content"])

CATEGORY_CREATE = _object({"name": CATEGORY_NAME}, ["name"])
CATEGORY_PATCH = _object({"name": CATEGORY_NAME})
