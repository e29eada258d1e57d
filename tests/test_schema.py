"""The served OpenAPI schema is valid, tagged by resource and names each parameter one way.

Client generators turn tags into classes and path parameters into argument names:
``{id}`` in one path and ``{room_pk}`` in the next for the same room made two names for
one thing, and one tag for everything (``v1``) made one class of every operation.
"""

import re
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.test import Client
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

METHODS = {"get", "put", "patch", "post", "delete", "head", "options", "trace"}
# Which tag an operation gets, by its path; the first match wins.
TAG_OF_PATH = [
    (r"^/api/v1/auth/", "auth"),
    (r"^/api/v1/users/", "users"),
    (r"^/api/v1/rooms/\{room_id\}/members/", "members"),
    (r"^/api/v1/rooms/\{room_id\}/messages/", "messages"),
    (r"^/api/v1/rooms/\{room_id\}/changes/", "messages"),
    (r"^/api/v1/messages/", "messages"),
    (r"^/api/v1/sync/", "messages"),
    (r"^/api/v1/rooms/", "rooms"),
]
# A path parameter is named after the collection it follows: rooms/{room_id}, ...
PARAMETER_AFTER = {
    "rooms": "room_id",
    "members": "user_id",
    "users": "user_id",
    "messages": "message_id",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return dict(response.json())


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_served_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    validate(schema)  # raises with the reason when it is not


def test_each_operation_has_the_one_tag_of_its_resource(schema: dict[str, Any]) -> None:
    declared = [tag["name"] for tag in schema["tags"]]
    assert declared == ["auth", "users", "rooms", "members", "messages"]
    assert all(tag.get("description") for tag in schema["tags"])

    for path, method, operation in operations(schema):
        expected = next(tag for pattern, tag in TAG_OF_PATH if re.match(pattern, path))
        assert operation["tags"] == [expected], (method, path)


def test_each_path_parameter_is_named_after_its_resource(schema: dict[str, Any]) -> None:
    for path, method, operation in operations(schema):
        segments = path.strip("/").split("/")
        in_path = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "path"}
        templated = [s[1:-1] for s in segments if s.startswith("{")]
        assert sorted(in_path) == sorted(templated), (method, path)
        for before, segment in pairwise(segments):
            if segment.startswith("{"):
                name = segment[1:-1]
                assert name == PARAMETER_AFTER[before], (method, path)
                assert in_path[name]["schema"]["type"] == "integer", (method, path)
                assert in_path[name].get("description"), (method, path)


def test_the_rooms_paths_name_the_room_room_id_everywhere(schema: dict[str, Any]) -> None:
    rooms = [path for path in schema["paths"] if path.startswith("/api/v1/rooms/{")]

    assert rooms
    assert all(path.startswith("/api/v1/rooms/{room_id}/") for path in rooms), rooms
    assert "/api/v1/rooms/{room_id}/members/{user_id}/" in schema["paths"]
    assert "/api/v1/messages/{message_id}/" in schema["paths"]
    assert "/api/v1/users/{user_id}/" in schema["paths"]


def _examples(node: Any) -> list[tuple[dict[str, Any], Any]]:
    """Every ``(schema, example)`` pair below ``node``."""
    found = []
    if isinstance(node, dict):
        if "example" in node and isinstance(node.get("type"), str):
            found.append(({k: v for k, v in node.items() if k != "example"}, node["example"]))
        for value in node.values():
            found.extend(_examples(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_examples(value))
    return found


def test_every_example_matches_its_schema(schema: dict[str, Any]) -> None:
    for subschema, example in _examples(schema):
        errors = list(OAS30Validator(subschema).iter_errors(example))
        assert errors == [], (example, subschema)


def test_pagination_examples_are_links_a_client_could_follow(schema: dict[str, Any]) -> None:
    seen = 0
    for path, method, operation in operations(schema):
        content = operation["responses"].get("200", {}).get("content", {})
        ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
        page = schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
        for field in ("next", "previous"):
            example = page.get("properties", {}).get(field, {}).get("example")
            if example is None:
                continue
            seen += 1
            # A URL as the server writes it: nothing left to escape, and the same list.
            assert quote(example, safe=":/?=&%") == example, (method, path, example)
            pattern = re.sub(r"\\\{\w+\\\}", "[0-9]+", re.escape(path))
            assert re.fullmatch(pattern, urlsplit(example).path), (method, path, example)
    assert seen >= 2  # the rooms and members lists
