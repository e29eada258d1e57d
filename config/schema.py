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
