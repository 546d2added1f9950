"""``openapi.yaml`` is a valid OpenAPI 3.1 document and keeps the conventions of the public surface.

Checks: structural validity, the exact operation table, resolvable ``$ref``s, reasons on every inferred
node, the error envelope on every error response, the convention headers and parameters on every
authenticated operation, the legacy redirects, the webhooks, and every example against its schema.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
BASE_URI = "urn:aurous-mock:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# operationId → (method, path, success statuses)
OPERATIONS: dict[str, tuple[str, str, set[str]]] = {
    "createImage": ("post", "/v1/images", {"201"}),
    "estimateImage": ("post", "/v1/images/estimate", {"200"}),
    "listGenerations": ("get", "/v1/images", {"200"}),
    "getGeneration": ("get", "/v1/images/{id}", {"200"}),
    "cancelGeneration": ("post", "/v1/images/{id}/cancel", {"200"}),
    "getImageOutput": ("get", "/v1/images/{id}/output/{index}", {"200"}),
    "createVideo": ("post", "/v1/videos", {"201"}),
    "estimateVideo": ("post", "/v1/videos/estimate", {"200"}),
    "getVideo": ("get", "/v1/videos/{id}", {"200"}),
    "getVideoOutput": ("get", "/v1/videos/{id}/output", {"200", "206"}),
    "listLoras": ("get", "/v1/loras", {"200"}),
    "getLora": ("get", "/v1/loras/{id}", {"200"}),
    "listVideoLoras": ("get", "/v1/video_loras", {"200"}),
    "getVideoLora": ("get", "/v1/video_loras/{id}", {"200"}),
    "listModels": ("get", "/v1/models", {"200"}),
    "getModel": ("get", "/v1/models/{id}", {"200"}),
    "createEmbedding": ("post", "/v1/embeddings", {"200"}),
    "estimateEmbedding": ("post", "/v1/embeddings/estimate", {"200"}),
    "createFile": ("post", "/v1/files", {"201"}),
    "getFile": ("get", "/v1/files/{id}", {"200"}),
    "deleteFile": ("delete", "/v1/files/{id}", {"200"}),
    "initCharacterUpload": ("post", "/v1/characters/uploads/init", {"200"}),
    "classifyCharacterUpload": ("post", "/v1/characters/uploads/classify", {"200"}),
    "createCharacter": ("post", "/v1/characters", {"201"}),
    "listCharacters": ("get", "/v1/characters", {"200"}),
    "getCharacter": ("get", "/v1/characters/{id}", {"200"}),
    "updateCharacter": ("patch", "/v1/characters/{id}", {"200"}),
    "deleteCharacter": ("delete", "/v1/characters/{id}", {"200"}),
    "saveCharacter": ("post", "/v1/characters/{id}/save", {"200"}),
    "resynthesizeCharacter": ("post", "/v1/characters/{id}/resynthesize", {"200"}),
    "regenerateCharacterRef": ("post", "/v1/characters/{id}/refs/regenerate", {"200"}),
    "createWebhookEndpoint": ("post", "/v1/webhook_endpoints", {"201"}),
    "listWebhookEndpoints": ("get", "/v1/webhook_endpoints", {"200"}),
    "getWebhookEndpoint": ("get", "/v1/webhook_endpoints/{id}", {"200"}),
    "deleteWebhookEndpoint": ("delete", "/v1/webhook_endpoints/{id}", {"200"}),
    "rotateWebhookEndpointSecret": ("post", "/v1/webhook_endpoints/{id}/rotate_secret", {"200"}),
    "testWebhookEndpoint": ("post", "/v1/webhook_endpoints/{id}/test", {"200"}),
    "getBalance": ("get", "/v1/balance", {"200"}),
    "getTeam": ("get", "/v1/team", {"200"}),
    "getPricing": ("get", "/v1/pricing", {"200"}),
    "getUsage": ("get", "/v1/usage", {"200"}),
    "listUsageEvents": ("get", "/v1/usage/events", {"200"}),
    "legacyCreateGeneration": ("post", "/v1/generations", {"308"}),
    "legacyListGenerations": ("get", "/v1/generations", {"308"}),
    "legacyGetGeneration": ("get", "/v1/generations/{id}", {"308"}),
    "legacyCreateVideoGeneration": ("post", "/v1/video-generations", {"308"}),
    "legacyGetVideoGeneration": ("get", "/v1/video-generations/{id}", {"308"}),
    "getDocsRedirect": ("get", "/docs", {"308"}),
    "createChatCompletion": ("post", "/v1/chat/completions", {"200"}),
    "getChatCompletion": ("get", "/v1/chat/completions/{id}", {"200"}),
    "cancelChatCompletion": ("post", "/v1/chat/completions/{id}/cancel", {"200"}),
}
LEGACY = {op for op, (_, _, ok) in OPERATIONS.items() if ok == {"308"}}
IDEMPOTENT = {
    "createImage",
    "createVideo",
    "createFile",
    "resynthesizeCharacter",
    "regenerateCharacterRef",
    "createEmbedding",
    "createChatCompletion",  # when not streamed
}
PAYMENT = {
    "createImage",
    "createVideo",
    "createCharacter",
    "resynthesizeCharacter",
    "regenerateCharacterRef",
    "createEmbedding",
    "createChatCompletion",
}
OUTPUTS = {"getImageOutput", "getVideoOutput"}
ALWAYS_200_DELETES = {"deleteFile", "deleteWebhookEndpoint"}  # "always 200, never 404"
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
IDEMPOTENCY_HEADERS = {"Idempotency-Key", "Aurous-Idempotent-Key", "Aurous-Idempotency-Key"}

EVENT_TYPES = {
    "image.completed", "image.failed", "image.cancelled",
    "video.completed", "video.failed", "video.cancelled",
    "usage.balance_low", "webhook.endpoint_disabled",
    "character.completed", "character.failed", "character.cancelled",
}  # fmt: skip

# Reference §1.7 (both tables, chat / embeddings included) plus the emulator-only ``not_implemented``.
ERROR_CODES = {
    "missing_field", "invalid_format", "value_out_of_range", "unsupported_lora_for_mode", "idempotency_key_in_use",
    "generation_not_cancellable", "balance_too_low", "prompt_blocked", "reference_blocked",
    "output_moderation_rejected", "output_not_available", "missing_api_key", "invalid_api_key", "revoked_api_key",
    "missing_scope", "resource_not_found", "forbidden_resource", "output_expired", "too_many_requests",
    "concurrency_limit_exceeded", "tpm_rate_limit_exceeded", "internal_error", "provider_unavailable",
    "provider_timeout", "insufficient_credits", "unknown_version", "character_not_ready", "mutually_exclusive_input",
    "parameter_invalid_combination", "upload_invalid", "invalid_request_error", "too_many_buckets",
    "invalid_page_token", "embeddings_input_too_many_items", "embeddings_video_unsupported",
    "embeddings_input_too_large", "embeddings_batch_not_supported", "embeddings_unsupported_dimensions",
    "max_tokens_exceeds_hard_cap",
    "max_input_tokens_exceeded", "model_wrong_kind", "chat_cancel_target_not_found",
    "chat_cancel_target_already_terminal", "chat_provider_unavailable", "not_implemented",
}  # fmt: skip
# The chat codes of the LLM fact sheet §11 that the image/video reference does not list.
ERROR_CODES |= {
    "chat_cancel_target_not_cancellable", "missing_max_tokens_no_model_default", "tool_choice_required_unsupported",
    "response_format_too_large", "response_format_too_deep", "provider_rate_limited",
}  # fmt: skip


@functools.cache
def spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return document


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def resolve_pointer(pointer: str) -> Any:
    node: Any = spec()
    for raw in pointer.lstrip("#/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def deref(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve_pointer(node["$ref"])
    return node


def walk(node: Any, pointer: str = "#") -> Iterator[tuple[str, Any]]:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{pointer}/{escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def operations() -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(method, path, operation, effective parameters) for every operation under ``paths``."""
    for path, item in spec()["paths"].items():
        shared = [deref(p) for p in item.get("parameters", [])]
        for method in METHODS:
            if method in item:
                op = item[method]
                own = [deref(p) for p in op.get("parameters", [])]
                names = {(p["in"], p["name"]) for p in own}
                yield method, path, op, own + [p for p in shared if (p["in"], p["name"]) not in names]


def authenticated() -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    for method, path, op, params in operations():
        if op.get("security", spec()["security"]) != []:
            yield method, path, op, params


def headers_of(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: deref(header) for name, header in deref(response).get("headers", {}).items()}


def test_document_is_valid_openapi_3_1() -> None:
    validate(spec())
    assert spec()["openapi"] == "3.1.0"
    assert spec()["info"]["version"] == "2026-05-15"
    assert spec()["info"]["title"] == "Aurous Labs public API v1 (as emulated by aurous-mock)"
    servers = {s["url"]: s.get("description") for s in spec()["servers"]}
    assert servers["http://127.0.0.1:8080"] == "aurous-mock default"
    assert "https://api.aurous-labs.com" in servers


def test_operation_table_is_exact() -> None:
    seen: dict[str, tuple[str, str, set[str]]] = {}
    for method, path, op, _ in operations():
        op_id = op.get("operationId")
        assert op_id, f"{method.upper()} {path} has no operationId"
        assert op_id not in seen, f"duplicate operationId {op_id}"
        ok = {status for status in op["responses"] if status.startswith(("2", "3"))}
        seen[op_id] = (method, path, ok)
    assert seen == OPERATIONS


def test_every_ref_resolves() -> None:
    for pointer, node in walk(spec()):
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            assert ref.startswith("#/"), f"{pointer}: external $ref {ref}"
            try:
                resolve_pointer(ref)
            except (KeyError, IndexError, ValueError):
                pytest.fail(f"{pointer}: unresolvable $ref {ref}")


def test_inferred_nodes_carry_a_reason() -> None:
    flagged = 0
    for pointer, node in walk(spec()):
        if not isinstance(node, dict):
            continue
        if "x-aurous-inferred" in node:
            assert node["x-aurous-inferred"] is True, pointer
            reason = node.get("x-aurous-inferred-reason")
            assert isinstance(reason, str), f"{pointer}: inferred without a reason"
            assert reason.strip(), f"{pointer}: inferred with an empty reason"
            assert "\n" not in reason.strip(), f"{pointer}: the reason should be one line"
            flagged += 1
        else:
            assert "x-aurous-inferred-reason" not in node, f"{pointer}: a reason without x-aurous-inferred"
    assert flagged >= 20


def test_error_code_enum_lists_every_documented_code() -> None:
    schemas = spec()["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == ERROR_CODES
    assert len(schemas["ErrorCode"]["enum"]) == len(ERROR_CODES)
    assert schemas["ErrorType"]["enum"] == [
        "invalid_request", "authentication", "not_found", "rate_limit", "server_error",
    ]  # fmt: skip
    error = schemas["Error"]["properties"]["error"]
    assert error["required"] == ["type", "code", "message", "param", "doc_url", "request_id"]
    assert error["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}


def test_every_error_response_uses_the_error_envelope() -> None:
    for method, path, op, _ in operations():
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            content = deref(response).get("content", {})
            assert content.get("application/json", {}).get("schema") == {"$ref": "#/components/schemas/Error"}, (
                f"{method.upper()} {path} {status} does not answer the Error envelope"
            )


def test_authenticated_operations_follow_the_conventions() -> None:
    for method, path, op, params in authenticated():
        where = f"{method.upper()} {path}"
        op_id = op["operationId"]
        headers_in = {p["name"] for p in params if p["in"] == "header"}
        assert "Aurous-Version" in headers_in, where
        statuses = set(op["responses"])
        assert {"400", "401", "403", "429", "500"} <= statuses, where
        if "{id}" in path and op_id not in ALWAYS_200_DELETES:
            assert "404" in statuses, where
        if op_id in ALWAYS_200_DELETES:
            assert "404" not in statuses, where
        if op_id in PAYMENT:
            assert "402" in statuses, where
        if op_id in IDEMPOTENT:
            assert IDEMPOTENCY_HEADERS <= headers_in, where
            assert "409" in statuses, where
        else:
            assert not IDEMPOTENCY_HEADERS & headers_in, where
        if "requestBody" in op:
            assert "413" in statuses, where
        for status, response in op["responses"].items():
            headers = headers_of(response)
            if status[0] in "24":
                for name in ("Aurous-Request-Id", "Aurous-Version"):
                    assert headers.get(name, {}).get("required") is True, f"{where} {status} lacks {name}"
            if status[0] == "2" or status == "429":
                for name in RATE_LIMIT_HEADERS:
                    assert headers.get(name, {}).get("required") is True, f"{where} {status} lacks {name}"
            elif status[0] in "45":
                for name in RATE_LIMIT_HEADERS:
                    assert name in headers, f"{where} {status} does not declare {name}"
                    assert not headers[name].get("required"), f"{where} {status}: {name} must be optional"
            if status == "429":
                assert headers["Retry-After"]["required"] is True
                assert headers["Retry-After"]["schema"]["type"] == "integer"
            if status[0] == "2":
                assert ("Aurous-Idempotent-Replayed" in headers) == (op_id in IDEMPOTENT), f"{where} {status}"


def test_convention_headers_are_exact() -> None:
    headers = spec()["components"]["headers"]
    assert headers["Aurous-Request-Id"]["schema"]["pattern"] == "^req_[0-9A-HJKMNP-TV-Z]{26}$"
    assert headers["Aurous-Version"]["schema"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert headers["Aurous-Idempotent-Replayed"]["schema"]["enum"] == ["true"]
    params = spec()["components"]["parameters"]
    assert params["AurousVersion"]["schema"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    for name in ("IdempotencyKey", "AurousIdempotentKey", "AurousIdempotencyKey"):
        assert params[name]["schema"] == {"type": "string", "minLength": 1, "maxLength": 256}
    assert params["AurousIdempotencyKey"]["x-aurous-inferred"] is True


def test_security_schemes_and_anonymous_outputs() -> None:
    schemes = spec()["components"]["securitySchemes"]
    assert schemes["api-key"] == {**schemes["api-key"], "type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert spec()["security"] == [{"api-key": []}, {"bearer": []}]
    for _method, path, op, params in operations():
        if op["operationId"] in OUTPUTS:
            assert op["security"] == [{}, {"api-key": []}, {"bearer": []}], path
            token = [p for p in params if p["in"] == "query" and p["name"] == "token"]
            assert len(token) == 1, path
            assert token[0]["schema"]["type"] == "string", path
            assert not token[0].get("required"), path
            assert {"404", "410", "422"} <= set(op["responses"]), path
    video = spec()["paths"]["/v1/videos/{id}/output"]["get"]
    assert "416" in video["responses"]
    assert headers_of(video["responses"]["206"])["Content-Range"]["required"] is True
    image = spec()["paths"]["/v1/images/{id}/output/{index}"]["get"]
    assert set(image["responses"]["200"]["content"]) == {"image/png", "image/jpeg"}


def test_legacy_routes_redirect() -> None:
    for _method, path, op, _ in operations():
        if op["operationId"] not in LEGACY:
            continue
        assert op.get("deprecated") is True, path
        assert op.get("security") == [], path
        assert set(op["responses"]) == {"308", "404"}, path  # 404 from the Sunset on (the legacy routes: inferred)
        headers = headers_of(op["responses"]["308"])
        assert headers["Location"]["required"] is True, path
        assert headers["Sunset"]["example"] == "Tue, 04 Aug 2026 00:00:00 GMT"
        deprecated = "docs" if op["operationId"] == "getDocsRedirect" else "route"
        assert headers["Aurous-Deprecated"]["schema"]["enum"] == [deprecated], path


def test_links_target_known_operations() -> None:
    known = set(OPERATIONS)
    linked = set()
    for pointer, node in walk(spec()):
        if pointer.endswith("/links") and isinstance(node, dict):
            for name, link in node.items():
                assert link.get("operationId") in known, f"{pointer}/{name}"
                linked.add(link["operationId"])
    assert {"getGeneration", "cancelGeneration", "getImageOutput", "getVideo", "getVideoOutput", "getFile"} <= linked
    assert {"deleteFile", "testWebhookEndpoint", "rotateWebhookEndpointSecret", "regenerateCharacterRef"} <= linked


def test_webhooks_cover_every_event_type() -> None:
    webhooks = spec()["webhooks"]
    assert set(webhooks) == EVENT_TYPES | {"generationCallback"}
    assert set(spec()["components"]["schemas"]["WebhookEventType"]["enum"]) == EVENT_TYPES
    for name, item in webhooks.items():
        op = item["post"]
        params = {deref(p)["name"]: deref(p) for p in op.get("parameters", [])}
        signature = params["Aurous-Webhook-Signature"]
        assert signature["schema"]["pattern"] == r"^t=\d{10},v1=[0-9a-f]{64}$", name
        assert signature["required"] is (name != "generationCallback"), name
        if name != "generationCallback":
            assert {"Aurous-Webhook-Id", "Aurous-Event-Id"} <= set(params), name
            assert op["requestBody"]["content"]["application/json"]["schema"]["allOf"][1] == {
                "type": "object",
                "properties": {"event": {"type": "string", "const": name}},
            }


def _validator_for(schema_pointer: str) -> Draft202012Validator:
    resource: Resource[Any] = DRAFT202012.create_resource(spec())
    registry: Registry[Any] = Registry().with_resource(BASE_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{BASE_URI}{schema_pointer}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _examples_with_schemas() -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, example value) for media types, parameters, headers and schemas."""
    for pointer, node in walk(spec()):
        if not isinstance(node, dict) or pointer.startswith("#/components/examples"):
            continue
        if "schema" in node and isinstance(node["schema"], dict) and ("example" in node or "examples" in node):
            schema_pointer = f"{pointer}/schema"
            if "example" in node:
                yield pointer, schema_pointer, node["example"]
            for name, example in node.get("examples", {}).items():
                example = deref(example)
                if "value" in example:
                    yield f"{pointer}/examples/{name}", schema_pointer, example["value"]
        is_schema = pointer.startswith("#/components/schemas/") or pointer.endswith("/schema")
        if is_schema and isinstance(node.get("examples"), list) and "properties" not in pointer.split("/")[-1:]:
            for index, value in enumerate(node["examples"]):
                yield f"{pointer}/examples/{index}", pointer, value


def test_every_example_matches_its_schema() -> None:
    checked = 0
    for where, schema_pointer, value in _examples_with_schemas():
        errors = sorted(_validator_for(schema_pointer).iter_errors(value), key=str)
        assert not errors, f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}"
        checked += 1
    assert checked >= 60
