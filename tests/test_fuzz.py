"""Property-based fuzzing of every operation of GET /openapi.json with schemathesis, in-process
through the WSGI app, as an admin (so every operation is reachable), over a small world whose
ids the generated paths hit: no 500, every status and content type documented, every body and
header conforming to its schema, invalid input refused, unsupported methods a 405."""
import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.auth import new_token
from api.config import Config
from api.db import Database

EXAMPLES = 20


def published_document():
    """The document the app serves; building the app needs no database."""
    config = Config(database_url="postgresql://unused")
    return falcon.testing.TestClient(create_app(config, Database(config))).simulate_get("/openapi.json").json


schema = schemathesis.openapi.from_dict(published_document(), config=schemathesis.Config.from_dict({
    "generation": {"mode": "all"},
    "phases": {"stateful": {"enabled": False}},
}))


@pytest.fixture
def world(client, admin, make_user, make_incident, make_category):
    """Users 1-3 (1 the admin), incidents 1-3 with comments, categories 1-2, notifications for 1."""
    reporter, responder = make_user("reporter"), make_user("responder")
    categories = [make_category()["id"] for _ in range(2)]
    for user in (reporter, responder, admin):
        incident = make_incident(user, category_ids=categories)
        client.simulate_post(f"/incidents/{incident['id']}/comments", json={"content": "disk full"},
                             headers=user["headers"])
    client.simulate_post(f"/users/{admin['id']}/follow", headers=reporter["headers"])
    client.simulate_patch("/incidents/1", json={"assignee_id": admin["id"]}, headers=responder["headers"])
    client.simulate_post("/incidents/1/resolve", headers=responder["headers"])
    return admin


@pytest.fixture
def fresh_token(db_conn, queries, world):
    """A new admin token for each case, so that a case revoking its token spoils no other."""
    def make():
        token, token_hash = new_token()
        queries.create_token(db_conn, token_hash=token_hash, user_id=world["id"])
        return {"Authorization": f"Bearer {token}"}
    return make


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, app, fresh_token):
    case.operation.schema.app = app  # also for the checks that send probes of their own
    case.call_and_validate(app=app, headers=fresh_token(), excluded_checks=[positive_data_acceptance])
