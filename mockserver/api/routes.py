"""The route table: every public operation by operationId, the legacy redirects, the spec and ``/_mock``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver.api import (
    account,
    characters,
    chat,
    control,
    control_state,
    control_views,
    embeddings,
    files,
    generations,
    journal,
    legacy,
    models,
    outputs,
    scenarios,
    spec,
    ui,
    usage,
    webhooks,
)
from mockserver.api.errors import error_response
from mockserver.api.pipeline import Ctx, Handler, Operation, endpoint, request_id_of
from mockserver.core.errors import NotEmulatedError

Endpoint = Callable[[Request], Awaitable[Response]]


def not_emulated(name: str) -> Handler:
    """An operation of the public surface that a later milestone fills in: answered, never silently wrong."""

    async def run(ctx: Ctx) -> Response:
        raise NotEmulatedError(operation=name)

    return run


Entry = tuple[str, str, str, Endpoint]  # method, path, operationId, endpoint


def _op(method: str, path: str, op: Operation) -> Entry:
    return method, path, op.name, endpoint(op)


def _raw(method: str, path: str, name: str, handler: Endpoint) -> Entry:
    return method, path, name, handler


def _todo(method: str, path: str, name: str, scope: str, bucket: str | None, *, idempotent: bool = False) -> Entry:
    return _op(method, path, Operation(name, not_emulated(name), scope, bucket, idempotent))


def _exact(route: Route) -> Route:
    """Starlette adds HEAD to every GET route; the spec documents none, so 405's ``Allow`` must not list it."""
    if route.methods is not None:
        route.methods.discard("HEAD")
    return route


def group(entries: list[Entry]) -> list[BaseRoute]:
    """One Route per path dispatching on the method, so a 405 lists every documented method in ``Allow``."""
    by_path: dict[str, dict[str, tuple[str, Endpoint]]] = {}
    for method, path, name, handler in entries:
        by_path.setdefault(path, {})[method] = (name, handler)
    routes: list[BaseRoute] = []
    for path, methods in by_path.items():
        if len(methods) == 1:
            [(method, (name, handler))] = methods.items()
            routes.append(_exact(Route(path, handler, methods=[method], name=name)))
            continue

        async def dispatch(request: Request, table: dict[str, tuple[str, Endpoint]] = methods) -> Response:
            return await table[request.method][1](request)

        names = "|".join(name for name, _ in methods.values())
        routes.append(_exact(Route(path, dispatch, methods=list(methods), name=names)))
    return routes


IMAGES_POST = ("write", "images_post")
ESTIMATE = ("write", "estimate_post")  # a POST: not in the read scope (inferred)
FILES_POST = ("write", "files_post")
HOOKS = ("write", "webhooks_post")
CHARS_POST = ("write", "characters_post")
CHARS_GET = ("read", "characters_get")
CHARS_SYNTH = ("write", "characters_synthesize")
# Idempotent operations with a lifecycle: a retry replays once what the original started is terminal (409 before).
GENERATION_KEYED: dict[str, Any] = {"idempotent": True, "running": generations.still_running}
SYNTHESIS_KEYED: dict[str, Any] = {"idempotent": True, "running": characters.still_synthesizing}
CHAT_POST = ("write", "chat_post")  # create and cancel (LLM fact sheet §14.14, inferred)

# Rate-limit classes of the undocumented cases (file/webhook deletes, rotation) are inferred.
PUBLIC: list[Entry] = [
    # Generations (images and videos)
    _op("POST", "/v1/images", Operation("createImage", generations.create_image, *IMAGES_POST, **GENERATION_KEYED)),
    _op("POST", "/v1/images/estimate", Operation("estimateImage", generations.estimate_image, *ESTIMATE)),
    _op("GET", "/v1/images", Operation("listGenerations", generations.list_generations)),
    _op("GET", "/v1/images/{id}", Operation("getGeneration", generations.get_generation)),
    _op("POST", "/v1/images/{id}/cancel", Operation("cancelGeneration", generations.cancel_generation, *IMAGES_POST)),
    _raw("GET", "/v1/images/{id}/output/{index}", "getImageOutput", outputs.get_image_output),
    _op("POST", "/v1/videos", Operation("createVideo", generations.create_video, *IMAGES_POST, **GENERATION_KEYED)),
    _op("POST", "/v1/videos/estimate", Operation("estimateVideo", generations.estimate_video, *ESTIMATE)),
    _op("GET", "/v1/videos/{id}", Operation("getVideo", generations.get_video)),
    _raw("GET", "/v1/videos/{id}/output", "getVideoOutput", outputs.get_video_output),
    # Catalogue
    _op("GET", "/v1/loras", Operation("listLoras", account.list_loras)),
    _op("GET", "/v1/loras/{id}", Operation("getLora", account.get_lora)),
    _op("GET", "/v1/video_loras", Operation("listVideoLoras", account.list_video_loras)),
    _op("GET", "/v1/video_loras/{id}", Operation("getVideoLora", account.get_video_lora)),
    # LLM: models and embeddings (fact sheet aurous-llm-v1.md; buckets inferred, §14.14)
    _op("GET", "/v1/models", Operation("listModels", models.list_models)),
    _op("GET", "/v1/models/{id}", Operation("getModel", models.get_model)),
    _op(
        "POST",
        "/v1/embeddings",
        Operation("createEmbedding", embeddings.create_embedding, "write", "chat_post", idempotent=True),
    ),
    _op("POST", "/v1/embeddings/estimate", Operation("estimateEmbedding", embeddings.estimate_embedding, *ESTIMATE)),
    # Files
    _op(
        "POST",
        "/v1/files",
        Operation("createFile", files.create_file, *FILES_POST, idempotent=True, fingerprint=files.upload_fingerprint),
    ),
    _op("GET", "/v1/files/{id}", Operation("getFile", files.get_file)),
    _op("DELETE", "/v1/files/{id}", Operation("deleteFile", files.delete_file, *FILES_POST)),
    # Characters
    _op(
        "POST",
        "/v1/characters/uploads/init",
        Operation("initCharacterUpload", characters.init_character_upload, *CHARS_POST),
    ),
    _op(
        "POST",
        "/v1/characters/uploads/classify",
        Operation("classifyCharacterUpload", characters.classify_character_upload, *CHARS_POST),
    ),
    # The bucket depends on `generate` in the body: the handler draws it (characters_post or characters_synthesize).
    _op("POST", "/v1/characters", Operation("createCharacter", characters.create_character, "write", None)),
    _op("GET", "/v1/characters", Operation("listCharacters", characters.list_characters, *CHARS_GET)),
    _op("GET", "/v1/characters/{id}", Operation("getCharacter", characters.get_character, *CHARS_GET)),
    _op("PATCH", "/v1/characters/{id}", Operation("updateCharacter", characters.update_character, *CHARS_POST)),
    _op("DELETE", "/v1/characters/{id}", Operation("deleteCharacter", characters.delete_character, *CHARS_POST)),
    _op("POST", "/v1/characters/{id}/save", Operation("saveCharacter", characters.save_character, *CHARS_POST)),
    _op(
        "POST",
        "/v1/characters/{id}/resynthesize",
        Operation("resynthesizeCharacter", characters.resynthesize_character, *CHARS_SYNTH, **SYNTHESIS_KEYED),
    ),
    _op(
        "POST",
        "/v1/characters/{id}/refs/regenerate",
        Operation("regenerateCharacterRef", characters.regenerate_character_ref, *CHARS_SYNTH, **SYNTHESIS_KEYED),
    ),
    # Webhook endpoints
    _op("POST", "/v1/webhook_endpoints", Operation("createWebhookEndpoint", webhooks.create_webhook_endpoint, *HOOKS)),
    _op("GET", "/v1/webhook_endpoints", Operation("listWebhookEndpoints", webhooks.list_webhook_endpoints)),
    _op("GET", "/v1/webhook_endpoints/{id}", Operation("getWebhookEndpoint", webhooks.get_webhook_endpoint)),
    _op(
        "DELETE",
        "/v1/webhook_endpoints/{id}",
        Operation("deleteWebhookEndpoint", webhooks.delete_webhook_endpoint, *HOOKS),
    ),
    _op(
        "POST",
        "/v1/webhook_endpoints/{id}/rotate_secret",
        Operation("rotateWebhookEndpointSecret", webhooks.rotate_webhook_endpoint_secret, *HOOKS),
    ),
    _op(
        "POST",
        "/v1/webhook_endpoints/{id}/test",
        Operation("testWebhookEndpoint", webhooks.test_webhook_endpoint, "write", "webhooks_test"),
    ),
    # Account
    _op("GET", "/v1/balance", Operation("getBalance", account.get_balance)),
    _op("GET", "/v1/team", Operation("getTeam", account.get_team)),
    _op("GET", "/v1/pricing", Operation("getPricing", account.get_pricing)),
    _op("GET", "/v1/usage", Operation("getUsage", usage.get_usage)),
    _op("GET", "/v1/usage/events", Operation("listUsageEvents", usage.list_usage_events)),
    # Chat completions (idempotent only when not streamed)
    _op(
        "POST",
        "/v1/chat/completions",
        Operation(
            "createChatCompletion",
            chat.create_chat_completion,
            *CHAT_POST,
            idempotent=True,
            idempotent_if=chat.not_streamed,
            replay_headers=chat.replay_headers,
        ),
    ),
    _op("GET", "/v1/chat/completions/{id}", Operation("getChatCompletion", chat.get_chat_completion)),
    _op(
        "POST",
        "/v1/chat/completions/{id}/cancel",
        Operation("cancelChatCompletion", chat.cancel_chat_completion, *CHAT_POST),
    ),
]

# Only the documented legacy methods redirect; anything else is an unknown route (405).
LEGACY: list[Entry] = [
    _raw("GET", "/v1/generations", "legacyListGenerations", legacy.legacy_redirect),
    _raw("POST", "/v1/generations", "legacyCreateGeneration", legacy.legacy_redirect),
    _raw("GET", "/v1/generations/{rest:anypath}", "legacyGetGeneration", legacy.legacy_redirect),
    _raw("POST", "/v1/video-generations", "legacyCreateVideoGeneration", legacy.legacy_redirect),
    _raw("GET", "/v1/video-generations/{rest:anypath}", "legacyGetVideoGeneration", legacy.legacy_redirect),
    _raw("GET", "/docs", "getDocsRedirect", legacy.docs_redirect),
]

STORAGE: list[BaseRoute] = [
    Route("/_storage/files/{id}", files.file_content, methods=["GET"], name="fileContent"),
    Route("/_storage/uploads/{id}", characters.put_character_upload, methods=["PUT"], name="characterUploadContent"),
    Route("/_storage/characters/{id}/refs/{key}", characters.get_character_ref, methods=["GET"], name="characterRef"),
]

SPEC: list[BaseRoute] = [
    Route("/openapi.yaml", spec.openapi_yaml, methods=["GET", "HEAD"], name="openapiYaml"),
    Route("/openapi.json", spec.openapi_json, methods=["GET", "HEAD"], name="openapiJson"),
]


def _control(path: str, handler: Handler, method: str = "POST") -> Route:
    inner = endpoint(Operation(f"mock_{handler.__name__}", handler, scope="read", bucket=None, provisions=True))

    async def run(request: Request) -> Response:
        refused = control.refusal(request)
        if refused is not None:
            return error_response(refused, request_id_of(request))
        return await inner(request)

    return _exact(Route(f"/_mock{path}", run, methods=[method], name=f"mock_{handler.__name__}"))


def _guarded(path: str, handler: Endpoint, name: str) -> Route:
    """A control route without authentication (the control spec), still off or token-guarded like the others."""

    async def run(request: Request) -> Response:
        refused = control.refusal(request)
        if refused is not None:
            return error_response(refused, request_id_of(request))
        return await handler(request)

    return _exact(Route(f"/_mock{path}", run, methods=["GET"], name=name))


def _one_per_path(table: list[BaseRoute]) -> list[BaseRoute]:
    """Control routes sharing a path become one Route, so a 405 lists every method of the path in ``Allow``."""
    by_path: dict[str, list[Route]] = {}
    for route in table:
        assert isinstance(route, Route)
        by_path.setdefault(route.path, []).append(route)
    merged: list[BaseRoute] = []
    for path, same in by_path.items():
        if len(same) == 1:
            merged.append(same[0])
            continue
        methods = {method: route.endpoint for route in same for method in route.methods or ()}

        async def dispatch(request: Request, methods: dict[str, Endpoint] = methods) -> Response:
            return await methods[request.method](request)

        merged.append(_exact(Route(path, dispatch, methods=list(methods), name="|".join(r.name for r in same))))
    return merged


CONTROL: list[BaseRoute] = [
    _control("/clock", control.get_clock, "GET"),
    _control("/clock/advance", control.advance_clock),
    _control("/clock/set", control.set_clock),
    _control("/clock/freeze", control.freeze_clock),
    _control("/clock/unfreeze", control.unfreeze_clock),
    _control("/reset", control.reset),
    _control("/webhooks/deliveries", control.list_webhook_deliveries, "GET"),
    _control("/webhooks/flush", control.flush_webhooks),
    _control("/webhooks/events/{event_id}/redeliver", control.redeliver_webhook_event),
    _control("/scenarios", scenarios.add_scenario),
    _control("/scenarios", scenarios.list_scenarios, "GET"),
    _control("/scenarios", scenarios.clear_scenarios, "DELETE"),
    _control("/scenarios/{id}", scenarios.delete_scenario, "DELETE"),
    _control("/snapshots", control_state.create_snapshot),
    _control("/snapshots", control_state.list_snapshots, "GET"),
    _control("/snapshots/{id}/restore", control_state.restore_snapshot),
    _control("/snapshots/{id}", control_state.delete_snapshot, "DELETE"),
    _control("/keys", control_state.declare_key),
    _control("/keys", control_state.list_keys, "GET"),
    _control("/keys/{key}", control_state.update_key, "PATCH"),
    _control("/team", control_state.get_team, "GET"),
    _control("/team", control_state.update_team, "PATCH"),
    _control("/journal", journal.list_journal, "GET"),
    _control("/journal/count", journal.count_journal, "GET"),
    _control("/journal", journal.clear_journal, "DELETE"),
    _guarded("/openapi.yaml", spec.control_openapi_yaml, "mock_control_openapi_yaml"),
    # The dashboard's views (api/control_views.py) and the dashboard itself (api/ui.py guards its own shell).
    _control("/teams", control_views.list_teams, "GET"),
    _control("/generations", control_views.list_generations, "GET"),
    _control("/characters", control_views.list_characters, "GET"),
    _control("/chat/completions", control_views.list_chat_completions, "GET"),
    _control("/ledger", control_views.list_ledger, "GET"),
    _control("/usage/llm", control_views.list_llm_usage, "GET"),
    _control("/webhooks/endpoints", control_views.list_webhook_endpoints, "GET"),
    _control("/changes", control_views.changes, "GET"),
    _exact(Route("/_mock/ui", ui.dashboard_page, methods=["GET"], name="mock_dashboard_page")),
    _exact(Route("/_mock/ui/static/{name}", ui.dashboard_asset, methods=["GET"], name="mock_dashboard_asset")),
]


def routes() -> list[BaseRoute]:
    """The whole table, in matching order (``api.dispatch.DirectRoutes`` in front of it finds full matches)."""
    return [*group(PUBLIC + LEGACY), *STORAGE, *SPEC, *_one_per_path(CONTROL)]
