from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ACCOUNTS_OPERATIONS = {
    "/api/v1/auth/register/": {"post"},
    "/api/v1/auth/token/": {"post"},
    "/api/v1/auth/token/refresh/": {"post"},
    "/api/v1/auth/logout/": {"post"},
    "/api/v1/users/me/": {"get", "patch"},
    "/api/v1/users/{user_id}/": {"get"},
}


@pytest.fixture
def schema(client: Client) -> Any:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_served_without_authentication(client: Client) -> None:
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_schema_lists_every_accounts_operation(schema: Any) -> None:
    for path, methods in ACCOUNTS_OPERATIONS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_the_schema_describes_request_and_response_shapes(schema: Any) -> None:
    components = schema["components"]["schemas"]
    register = schema["paths"]["/api/v1/auth/register/"]["post"]
    token = schema["paths"]["/api/v1/auth/token/"]["post"]

    register_request = register["requestBody"]["content"]["application/json"]["schema"]
    assert components[register_request["$ref"].rsplit("/", 1)[1]]["required"] == [
        "password",
        "username",
    ]
    register_created = register["responses"]["201"]["content"]["application/json"]["schema"]
    assert set(components[register_created["$ref"].rsplit("/", 1)[1]]["properties"]) == {
        "user",
        "access",
        "refresh",
    }
    assert {"201", "400", "429"} <= set(register["responses"])
    assert {"200", "401", "429"} <= set(token["responses"])
    me = schema["paths"]["/api/v1/users/me/"]
    assert me["get"]["security"] == [{"jwtAuth": []}]
    assert "401" in me["get"]["responses"]


def test_the_docs_page_is_served_without_authentication(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"swagger" in response.content.lower()
