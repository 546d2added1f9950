"""The ceiling of our stack: bare Starlette routes answering fixed JSON, run under the same uvicorn settings.

The paths match the emulator's so that the benchmark's wrk scripts run unchanged against both. Bodies are
encoded once at import: no auth, no state, no rendering, nothing but routing and a response.
``/files/{name}`` serves a file of the directory named by ``BENCH_FILES`` with ``FileResponse``: the ceiling
for cached output downloads (``run.py`` puts the emulator's own output bytes there).
Run it the way ``run.py`` does: ``uvicorn baseline_app:app --app-dir bench --no-access-log``.

``floor`` is the floor under that ceiling: the same API answers (status, body, content-type and content-length)
from a plain ASGI callable, no Starlette at all, so that what is left is uvicorn and httptools alone
(``uvicorn baseline_app:floor``, same settings). It has no ``/files`` route.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

# The same shapes (and about the same sizes) as the emulator's answers.
GENERATION = orjson.dumps(
    {
        "object": "inference",
        "id": "img_01JZ0000000000000000000000",
        "status": "succeeded",
        "prompt": "a lighthouse at dusk, volumetric fog",
        "created_at": "2026-05-04T10:00:00Z",
        "media_type": "image",
        "negative_prompt": None,
        "output_urls": [
            "http://127.0.0.1:8080/v1/images/img_01JZ0000000000000000000000/output/0"
            "?token=1778000000.0123456789abcdef0123456789abcdef01234567"
        ],
        "output_video_url": None,
        "reference_image_urls": None,
        "error_message": None,
        "duration_ms": 14000,
        "cost": {"amount": 0.5, "currency": "credit", "breakdown": {"base": 0.5, "enhance": 0}},
        "width": 1024,
        "height": 1024,
        "image_count": 1,
        "size_preset": "square",
        "inference_type": "t2i",
        "cfg_rescale": 0,
        "denoise_strength": None,
        "seed": 1234567,
        "video_duration": None,
        "video_resolution": None,
        "video_ratio": None,
        "video_camera_fixed": None,
        "character_id": None,
        "loras": None,
        "aurous_version": "2026-05-15",
        "creation_request_id": "req_01JZ0000000000000000000000",
        "completed_at": "2026-05-04T10:00:16Z",
    }
)
BALANCE = orjson.dumps(
    {
        "credits": 1000.0,
        "held_credits": 0.0,
        "available_credits": 1000.0,
        "currency": "credit",
        "billing_mode": "metered",
    }
)


async def get_generation(request: Request) -> Response:
    return Response(GENERATION, media_type="application/json")


async def create_image(request: Request) -> Response:
    await request.body()  # a real create reads its body too
    return Response(GENERATION, status_code=201, media_type="application/json")


async def get_balance(request: Request) -> Response:
    return Response(BALANCE, media_type="application/json")


FILES = Path(os.environ.get("BENCH_FILES", "."))


async def get_file(request: Request) -> Response:
    return FileResponse(FILES / Path(request.path_params["name"]).name)


app = Starlette(
    routes=[
        Route("/v1/images", create_image, methods=["POST"]),
        Route("/v1/images/{id}", get_generation, methods=["GET"]),
        Route("/v1/balance", get_balance, methods=["GET"]),
        Route("/files/{name}", get_file, methods=["GET"]),
    ]
)


# --- the uvicorn floor: a plain ASGI callable --------------------------------------------------------------

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _answer(status: int, body: bytes, content_type: bytes = b"application/json") -> tuple[Message, Message]:
    """A response's two messages, built once, with the headers Starlette's ``Response`` sends (in its order)."""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", content_type)]
    start = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


POLLED, CREATED, BALANCED = _answer(200, GENERATION), _answer(201, GENERATION), _answer(200, BALANCE)
NOT_FOUND = _answer(404, b"Not Found", b"text/plain; charset=utf-8")  # what Starlette answers


async def floor(scope: Message, receive: Receive, send: Send) -> None:
    """The API routes of ``app`` (the same answers), matched with plain comparisons; 404 for anything else."""
    if scope["type"] == "lifespan":  # uvicorn runs with --lifespan on
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    method, path = scope["method"], scope["path"]
    if method == "GET" and path == "/v1/balance":
        answer = BALANCED
    elif method == "GET" and path.startswith("/v1/images/") and path.count("/") == 3 and len(path) > 11:
        answer = POLLED
    elif method == "POST" and path == "/v1/images":
        while (await receive()).get("more_body"):  # a real create reads its body too
            pass
        answer = CREATED
    else:
        answer = NOT_FOUND
    await send(answer[0])
    await send(answer[1])
