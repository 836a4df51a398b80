"""The OpenAPI document every service serves: FastAPI's, plus what it cannot infer.

- Bodies read by `shared.bodies.read_body` (declared with `json_body`) get their models
  in the components, like declared bodies.
- Every error answer is documented as the problem+json the services send
  (`shared.problems.Problem`), not FastAPI's `HTTPValidationError` for a 422. Responses
  with their own JSON schema (`/health`'s 503 report) are left as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shared.bodies import add_body_schemas
from shared.problems import PROBLEM_JSON, Problem

REF = "#/components/schemas/{model}"


def install_openapi(app: FastAPI) -> None:
    """Have `app` serve the completed document (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            add_body_schemas(document)
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
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schema = Problem.model_json_schema(ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[Problem.__name__] = schema
    # FastAPI's own 422 models, once no response names them any more.
    if REF.format(model="HTTPValidationError") not in _refs(document):
        schemas.pop("HTTPValidationError", None)
        if REF.format(model="ValidationError") not in _refs(document):
            schemas.pop("ValidationError", None)


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
