"""The route table: every public operation by operationId, the legacy redirects, the spec and ``/_mock``."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver.api import account, control, files, generations, legacy, outputs, spec
from mockserver.api.pipeline import Ctx, Handler, Operation, endpoint
from mockserver.core.errors import NotEmulatedError


def not_emulated(name: str) -> Handler:
    """An operation of the public surface that a later milestone fills in: answered, never silently wrong."""

    async def run(ctx: Ctx) -> Response:
        raise NotEmulatedError(operation=name)

    return run


def _op(method: str, path: str, op: Operation) -> Route:
    return Route(path, endpoint(op), methods=[method], name=op.name)


def _todo(method: str, path: str, name: str, scope: str, bucket: str | None, *, idempotent: bool = False) -> Route:
    return _op(method, path, Operation(name, not_emulated(name), scope, bucket, idempotent))


IMAGES_POST = ("write", "images_post")
ESTIMATE = ("write", "estimate_post")  # a POST: not in the read scope (inferred)
FILES_POST = ("write", "files_post")

# Rate-limit classes of the undocumented cases (file/webhook deletes, rotation) are inferred.
PUBLIC: list[BaseRoute] = [
    # Generations (images and videos)
    _op("POST", "/v1/images", Operation("createImage", generations.create_image, *IMAGES_POST, idempotent=True)),
    _op("POST", "/v1/images/estimate", Operation("estimateImage", generations.estimate_image, *ESTIMATE)),
    _op("GET", "/v1/images", Operation("listGenerations", generations.list_generations)),
    _op("GET", "/v1/images/{id}", Operation("getGeneration", generations.get_generation)),
    _op("POST", "/v1/images/{id}/cancel", Operation("cancelGeneration", generations.cancel_generation, *IMAGES_POST)),
    Route("/v1/images/{id}/output/{index}", outputs.get_image_output, methods=["GET", "HEAD"], name="getImageOutput"),
    _op("POST", "/v1/videos", Operation("createVideo", generations.create_video, *IMAGES_POST, idempotent=True)),
    _op("POST", "/v1/videos/estimate", Operation("estimateVideo", generations.estimate_video, *ESTIMATE)),
    _op("GET", "/v1/videos/{id}", Operation("getVideo", generations.get_video)),
    Route("/v1/videos/{id}/output", outputs.get_video_output, methods=["GET", "HEAD"], name="getVideoOutput"),
    # Catalogue
    _op("GET", "/v1/loras", Operation("listLoras", account.list_loras)),
    _op("GET", "/v1/loras/{id}", Operation("getLora", account.get_lora)),
    _op("GET", "/v1/video_loras", Operation("listVideoLoras", account.list_video_loras)),
    _op("GET", "/v1/video_loras/{id}", Operation("getVideoLora", account.get_video_lora)),
    # Files
    _op(
        "POST",
        "/v1/files",
        Operation("createFile", files.create_file, *FILES_POST, idempotent=True, fingerprint=files.upload_fingerprint),
    ),
    _op("GET", "/v1/files/{id}", Operation("getFile", files.get_file)),
    _op("DELETE", "/v1/files/{id}", Operation("deleteFile", files.delete_file, *FILES_POST)),
    # Characters
    _todo("POST", "/v1/characters/uploads/init", "initCharacterUpload", "write", "characters_post"),
    _todo("POST", "/v1/characters/uploads/classify", "classifyCharacterUpload", "write", "characters_post"),
    _todo("POST", "/v1/characters", "createCharacter", "write", "characters_post"),
    _todo("GET", "/v1/characters", "listCharacters", "read", "characters_get"),
    _todo("GET", "/v1/characters/{id}", "getCharacter", "read", "characters_get"),
    _todo("PATCH", "/v1/characters/{id}", "updateCharacter", "write", "characters_post"),
    _todo("DELETE", "/v1/characters/{id}", "deleteCharacter", "write", "characters_post"),
    _todo("POST", "/v1/characters/{id}/save", "saveCharacter", "write", "characters_post"),
    _todo(
        "POST",
        "/v1/characters/{id}/resynthesize",
        "resynthesizeCharacter",
        "write",
        "characters_synthesize",
        idempotent=True,
    ),
    _todo(
        "POST",
        "/v1/characters/{id}/refs/regenerate",
        "regenerateCharacterRef",
        "write",
        "characters_synthesize",
        idempotent=True,
    ),
    # Webhook endpoints
    _todo("POST", "/v1/webhook_endpoints", "createWebhookEndpoint", "write", "webhooks_post"),
    _todo("GET", "/v1/webhook_endpoints", "listWebhookEndpoints", "read", "get"),
    _todo("GET", "/v1/webhook_endpoints/{id}", "getWebhookEndpoint", "read", "get"),
    _todo("DELETE", "/v1/webhook_endpoints/{id}", "deleteWebhookEndpoint", "write", "webhooks_post"),
    _todo("POST", "/v1/webhook_endpoints/{id}/rotate_secret", "rotateWebhookEndpointSecret", "write", "webhooks_post"),
    _todo("POST", "/v1/webhook_endpoints/{id}/test", "testWebhookEndpoint", "write", "webhooks_test"),
    # Account
    _op("GET", "/v1/balance", Operation("getBalance", account.get_balance)),
    _op("GET", "/v1/team", Operation("getTeam", account.get_team)),
    _op("GET", "/v1/pricing", Operation("getPricing", account.get_pricing)),
    _todo("GET", "/v1/usage", "getUsage", "read", "get"),
    _todo("GET", "/v1/usage/events", "listUsageEvents", "read", "get"),
]

_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

LEGACY: list[BaseRoute] = [
    Route("/v1/generations", legacy.legacy_redirect, methods=_ANY, name="legacyGenerations"),
    Route("/v1/generations/{rest:path}", legacy.legacy_redirect, methods=_ANY, name="legacyGenerationsPath"),
    Route("/v1/video-generations", legacy.legacy_redirect, methods=_ANY, name="legacyVideoGenerations"),
    Route("/v1/video-generations/{rest:path}", legacy.legacy_redirect, methods=_ANY, name="legacyVideoPath"),
    Route("/docs", legacy.docs_redirect, methods=["GET", "HEAD"], name="getDocsRedirect"),
]

STORAGE: list[BaseRoute] = [
    Route("/_storage/files/{id}", files.file_content, methods=["GET", "HEAD"], name="fileContent"),
]

SPEC: list[BaseRoute] = [
    Route("/openapi.yaml", spec.openapi_yaml, methods=["GET", "HEAD"], name="openapiYaml"),
    Route("/openapi.json", spec.openapi_json, methods=["GET", "HEAD"], name="openapiJson"),
]


def _control(path: str, handler: Handler, method: str = "POST") -> Route:
    op = Operation(f"mock_{handler.__name__}", control.guarded(handler), scope="read", bucket=None)
    return Route(f"/_mock{path}", endpoint(op), methods=[method], name=op.name)


CONTROL: list[BaseRoute] = [
    _control("/clock", control.get_clock, "GET"),
    _control("/clock/advance", control.advance_clock),
    _control("/clock/set", control.set_clock),
    _control("/clock/freeze", control.freeze_clock),
    _control("/clock/unfreeze", control.unfreeze_clock),
    _control("/reset", control.reset),
]


def routes() -> list[BaseRoute]:
    return [*PUBLIC, *LEGACY, *STORAGE, *SPEC, *CONTROL]
