"""The OpenAPI document every service serves: FastAPI's, with the errors as they are sent.

Every error answer is documented as the problem+json the services send
(`shared.problems.Problem`), not FastAPI's `HTTPValidationError` for a 422. Responses with
their own JSON schema (`/health`'s 503 report) are left as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from shared.problems import PROBLEM_JSON, Problem

REF = "#/components/schemas/{model}"


def install_openapi(app: FastAPI) -> None:
    """Have `app` serve the completed document (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(document: dict[str, Any]) -> None:
    """Point every 4xx/5xx response without a schema of its own at `Problem`."""
    problem = {"schema": {"$ref": REF.format(model=Problem.__name__)}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45" and _generic(response.get("content", {})):
                    response["content"] = {PROBLEM_JSON: problem}
    schemas = _define(document, Problem)
    # FastAPI's own 422 models, once no response names them any more.
    if REF.format(model="HTTPValidationError") not in _refs(document):
        schemas.pop("HTTPValidationError", None)
        if REF.format(model="ValidationError") not in _refs(document):
            schemas.pop("ValidationError", None)


def _define(document: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Put `model`'s schema, and those it nests, in the components; return them all."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schema = model.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return schemas


def _generic(content: dict[str, Any]) -> bool:
    """No content, a problem+json one, or FastAPI's default 422 body."""
    if not content or PROBLEM_JSON in content:
        return True
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return len(content) == 1 and ref.endswith("/HTTPValidationError")


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()
