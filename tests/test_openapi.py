"""The OpenAPI document describes exactly the routes the app serves, and what they answer."""

import re

import falcon.inspect
import pytest
from openapi_spec_validator import validate

from api.validation import Validator


@pytest.fixture(scope="module")
def document(app):
    return falcon.testing.TestClient(app).simulate_get("/openapi.json").json


def served_operations(app):
    operations = set()
    for route in falcon.inspect.inspect_routes(app):
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        operations |= {(path, m.method.lower()) for m in route.methods if not m.internal}
    return operations


def test_document_is_valid_openapi_3_1_and_needs_no_token(client, document):
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert client.simulate_get("/openapi.json").headers["content-type"] == "application/json"


def test_every_served_route_and_method_is_documented_and_nothing_else(app, document):
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == served_operations(app)
    assert len(documented) >= 37


def test_every_operation_documents_its_errors_as_problems(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert {"400", "503"} <= set(responses), (method, path)
            if op.get("security") != []:
                assert "401" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in op:
                assert {"413", "415", "422"} <= set(responses), (method, path)
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in response["content"], (method, path, code)


def test_query_parameters_carry_enums_and_bounds(document):
    params = {p["name"]: p for p in document["paths"]["/incidents"]["get"]["parameters"]}
    assert params["status"]["schema"]["items"]["enum"] == ["open", "in_progress", "resolved", "closed"]
    assert params["status"]["explode"] is False
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert params["created_after"]["schema"]["format"] == "date-time"
    search = {p["name"]: p for p in document["paths"]["/incidents/search"]["get"]["parameters"]}
    assert search["query"]["required"] is True
    assert document["paths"]["/incidents/{incident_id}"]["patch"]["requestBody"]["content"].keys() == {
        "application/json",
        "application/merge-patch+json",
    }


def test_responses_conform_to_their_documented_schemas(
    client, document, reporter, responder, admin, make_category
):
    """A walk through the API in which every body is checked against the document."""

    def check(result, method, template):
        op = document["paths"][template][method]
        response = op["responses"][str(result.status_code)]
        if result.status_code >= 400:
            schema = document["components"]["schemas"]["Problem"]
        elif "content" in response:
            schema = next(iter(response["content"].values()))["schema"]
        else:
            assert result.text == ""
            return result
        Validator(schema, format_checker=Validator.FORMAT_CHECKER).validate(result.json)
        return result

    category = make_category()
    incident = check(
        client.simulate_post(
            "/incidents", json={"title": "x", "category_ids": [category["id"]]}, headers=reporter["headers"]
        ),
        "post",
        "/incidents",
    ).json
    url = f"/incidents/{incident['id']}"
    check(client.simulate_get("/incidents", headers=reporter["headers"]), "get", "/incidents")
    check(
        client.simulate_patch(
            url, json={"status": "in_progress", "assignee_id": responder["id"]}, headers=responder["headers"]
        ),
        "patch",
        "/incidents/{incident_id}",
    )
    check(
        client.simulate_post(url + "/comments", json={"content": "c"}, headers=reporter["headers"]),
        "post",
        "/incidents/{incident_id}/comments",
    )
    check(
        client.simulate_post(url + "/resolve", headers=responder["headers"]),
        "post",
        "/incidents/{incident_id}/resolve",
    )
    check(
        client.simulate_get(url + "/history", headers=reporter["headers"]),
        "get",
        "/incidents/{incident_id}/history",
    )
    check(client.simulate_get("/notifications", headers=reporter["headers"]), "get", "/notifications")
    check(
        client.simulate_get("/incidents/search", params={"query": "x"}, headers=reporter["headers"]),
        "get",
        "/incidents/search",
    )
    check(client.simulate_get("/incidents/stats", headers=reporter["headers"]), "get", "/incidents/stats")
    check(client.simulate_get("/users", headers=reporter["headers"]), "get", "/users")
    check(client.simulate_get("/health"), "get", "/health")
    check(
        client.simulate_patch(url, json={"status": "in_progress"}, headers=responder["headers"]),
        "patch",
        "/incidents/{incident_id}",
    )  # 409
    check(
        client.simulate_delete(url, headers=reporter["headers"]), "delete", "/incidents/{incident_id}"
    )  # 403
    check(client.simulate_delete(url, headers=admin["headers"]), "delete", "/incidents/{incident_id}")


def test_docs_page_loads_swagger_ui_from_this_server(client):
    page = client.simulate_get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
    assert len(assets) == 2 and "openapi.json" in page.text and "http" not in page.text
    for asset in assets:
        result = client.simulate_get(asset)
        assert result.status_code == 200 and len(result.content) > 1000
