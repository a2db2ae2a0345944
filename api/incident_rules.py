"""Who may change what in an incident, and which status may follow which."""

import hashlib

import falcon
import orjson

from api.auth import forbid
from api.errors import Problem

TRANSITIONS = {
    "open": ["in_progress", "resolved", "closed"],
    "in_progress": ["open", "resolved", "closed"],
    "resolved": ["open", "closed"],
    "closed": ["open"],
}
RESPONDER_ROLES = ("responder", "admin")
REPORTER_FIELDS = {"title", "description"}


def allowed_transitions(user, incident):
    return TRANSITIONS[incident["status"]] if user["role"] in RESPONDER_ROLES else []


def etag_of(incident):
    """The incident's ETag: its version, and for one with categories a digest of their ids and
    names too, since renaming or deleting a category changes the representation but no
    incident's version."""
    if not incident["categories"]:
        return str(incident["version"])
    named = [(category["id"], category["name"]) for category in incident["categories"]]
    return f"{incident['version']}-{hashlib.blake2b(orjson.dumps(named), digest_size=6).hexdigest()}"


def present(incident, user):
    """The incident as the API shows it to `user`."""
    return {**incident, "allowed_transitions": allowed_transitions(user, incident)}


def changes(current, body):
    """The members of `body` whose values differ from the incident's current ones."""
    wanted = {**body, "category_ids": sorted(body["category_ids"])} if "category_ids" in body else body
    return {name: value for name, value in wanted.items() if value != current[name]}


def check_may_change(user, incident, changed):
    if user["role"] in RESPONDER_ROLES:
        return
    if incident["reporter_id"] != user["id"]:
        raise forbid("Reporters may only edit incidents they reported.")
    beyond = sorted(set(changed) - REPORTER_FIELDS)
    if beyond:
        raise forbid(f"Reporters may change only title and description, not {', '.join(beyond)}.")


def check_transition(user, incident, new_status):
    allowed = allowed_transitions(user, incident)
    if new_status not in allowed:
        raise Problem(
            falcon.HTTP_409,
            f"An incident that is {incident['status']} cannot become {new_status}; "
            f"allowed: {', '.join(allowed) or 'none'}.",
            [{"pointer": "#/status", "detail": "is not an allowed transition"}],
            allowed_transitions=allowed,
        )
