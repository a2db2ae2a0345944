"""Property-based fuzzing of every operation of GET /openapi.json with schemathesis, in-process
through the ASGI app, as an admin (so every operation is reachable), over a small world whose
ids the generated paths hit: no 500, every status and content type documented, every body and
header conforming to its schema, invalid input refused, unsupported methods a 405. Then
stateful walks along the links schemathesis infers (create, then read, change, delete it)."""

import dataclasses

import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.auth import new_token
from api.config import Config
from api.db import Database
from tests.fix_db import empty

EXAMPLES = 150
WALKS, STEPS = 60, 8
RELAXED = {"deadline": None, "suppress_health_check": list(HealthCheck)}


def published_document():
    """The document the app serves; building the app needs no database."""
    config = Config(database_url="postgresql://unused")
    return falcon.testing.TestClient(create_app(Database(config))).simulate_get("/openapi.json").json


schema = schemathesis.openapi.from_dict(
    published_document(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "with-security-parameters": False},
            # NOTE: valid input may still be refused (a 409 duplicate, a 422 unknown id, a cursor not ours)
            "checks": {"positive_data_acceptance": {"enabled": False}},
            "phases": {
                "stateful": {
                    "generation": {"mode": "positive"},
                    "inference": {"algorithms": ["dependency-analysis"]},
                }
            },
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_app(config):
    """The app as served, opening its pool at ASGI startup: schemathesis calls it from an event
    loop of its own, not the one Falcon's test client (and so the `app` fixture's pool) runs on.
    Its retention job never runs: nothing shuts this app down, and a round that fired during a
    later test once held a lock on the events, in a transaction it never ended, and stalled that
    test's emptying of the tables."""
    return create_app(Database(dataclasses.replace(config, retention_interval_seconds=10**7)), lifespan=True)


@pytest.fixture
def build_world(client, db_conn, data_tables, make_user, make_incident, make_category):
    """Empties the database, then makes users 1-3 (1 the admin), incidents 1-3 with comments,
    categories 1-2 and notifications for 1; returns the admin."""

    def build():
        empty(db_conn, data_tables)
        admin, reporter, responder = make_user("admin"), make_user("reporter"), make_user("responder")
        categories = [make_category()["id"] for _ in range(2)]
        for user in (reporter, responder, admin):
            incident = make_incident(user, category_ids=categories)
            client.simulate_post(
                f"/incidents/{incident['id']}/comments",
                json={"content": "disk full"},
                headers=user["headers"],
            )
        client.simulate_post(f"/users/{admin['id']}/follow", headers=reporter["headers"])
        client.simulate_patch("/incidents/1", json={"assignee_id": admin["id"]}, headers=responder["headers"])
        client.simulate_post("/incidents/1/resolve", headers=responder["headers"])
        return admin

    return build


@pytest.fixture
def fresh_token(db_conn, queries, build_world):
    """A new admin token for each case, so that a case revoking its token spoils no other."""
    admin = build_world()

    def make():
        token, token_hash = new_token()
        queries.create_token(db_conn, token_hash=token_hash, user_id=admin["id"], ttl_days=30)
        return {"Authorization": f"Bearer {token}"}

    return make


@schema.parametrize()
@settings(max_examples=EXAMPLES, **RELAXED)
def test_every_operation_answers_as_documented(case, fuzz_app, fresh_token):
    case.operation.schema.app = fuzz_app  # also for the checks that send probes of their own
    case.call_and_validate(app=fuzz_app, headers=fresh_token())


def test_stateful_walks_along_inferred_links(fuzz_app, build_world, fresh_token):
    schema.app = fuzz_app
    assert schema.apply_stateful_inference(None).selected > 100

    class Walks(schema.as_state_machine()):
        def setup(self):
            build_world()  # NOTE: each walk must start from the same state, or Hypothesis cannot replay it

        def get_call_kwargs(self, case):
            return {"app": fuzz_app, "headers": fresh_token()}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # the token is ours, not generated: checks must know it, as call_and_validate tells them
            case.validate_response(
                response, headers=kwargs["headers"], transport_kwargs=kwargs, recorder=self.recorder
            )

    Walks.run(settings=settings(max_examples=WALKS, stateful_step_count=STEPS, **RELAXED))


# --- What fuzzing found, kept as regular tests ----------------------------------------------


def test_resolve_documents_its_body_as_optional_and_takes_none(client, responder, make_incident):
    operation = published_document()["paths"]["/incidents/{incident_id}/resolve"]["post"]
    assert operation["requestBody"]["required"] is False
    incident = make_incident(responder)
    result = client.simulate_post(f"/incidents/{incident['id']}/resolve", headers=responder["headers"])
    assert result.status_code == 200 and result.json["status"] == "resolved"


def test_login_documents_its_401_and_429(client):
    responses = published_document()["paths"]["/auth/tokens"]["post"]["responses"]
    assert {"401", "429"} <= set(responses)
    result = client.simulate_post("/auth/tokens", json={"username": "nobody", "password": "x"})
    assert result.status_code == 401 and result.headers["content-type"] == "application/problem+json"
