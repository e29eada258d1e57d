"""OpenAPI post-processing for what views cannot each declare."""

from typing import Any

UNAUTHENTICATED = {
    "description": "No access token, or an invalid or expired one.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def add_unauthenticated_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Every operation that needs an access token may answer 401 (API.md, Conventions)."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            security = operation.get("security") or []
            if {} not in security and any("jwtAuth" in item for item in security):
                operation.setdefault("responses", {}).setdefault("401", UNAUTHENTICATED)
    return result


# Every path names a room {room_id}, a user {user_id} and a message {message_id}.
PATH_PARAMETERS = {
    "room_id": "The room's id.",
    "user_id": "The user's id.",
    "message_id": "The message's id.",
}


def describe_path_parameters(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """One description and one type for each path parameter, whichever view declares it."""
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                description = PATH_PARAMETERS.get(parameter["name"])
                if parameter["in"] == "path" and description is not None:
                    parameter["description"] = description
                    parameter["schema"] = {"type": "integer"}
    return result
