"""A small Aurous Labs API client, the kind a product team writes for itself.

Nothing in here knows about aurous-mock: point ``base_url`` at ``https://api.aurous-labs.com`` in production
and at the emulator in tests. Two seams make it testable without waiting in real time:

* ``sleep`` (default ``time.sleep``) is called for every back-off, so tests can record the delays and move the
  emulator's virtual clock instead of sleeping;
* ``wait(gen_id, poll=...)`` calls ``poll()`` between two reads of a generation, so tests can advance the clock
  (``poll=lambda: aurous_mock.clock.advance(5)``) where production code would sleep a couple of seconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class AurousError(Exception):
    """An error answered in the API's envelope: ``{"error": {"type", "code", "message", "param", "request_id"}}``."""

    def __init__(
        self,
        status: int,
        type: str,
        code: str,
        message: str,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.type, self.code, self.message = status, type, code, message
        self.param, self.request_id, self.retry_after = param, request_id, retry_after

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUS

    @classmethod
    def from_response(cls, response: httpx.Response) -> AurousError:
        try:
            body = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            body = {"type": "unknown", "code": "unexpected_response", "message": response.text[:200]}
        retry_after = response.headers.get("Retry-After")
        return cls(
            status=response.status_code,
            type=str(body.get("type", "unknown")),
            code=str(body.get("code", "unknown")),
            message=str(body.get("message", "")),
            param=body.get("param"),
            request_id=body.get("request_id") or response.headers.get("Aurous-Request-Id"),
            retry_after=float(retry_after) if retry_after is not None else None,
        )


class GenerationFailed(Exception):
    """A generation reached ``failed``; ``error_message`` is the API's reason."""

    def __init__(self, generation: dict[str, Any]) -> None:
        super().__init__(f"generation {generation['id']} failed: {generation.get('error_message')}")
        self.generation = generation
        self.error_message: str | None = generation.get("error_message")


class WaitTimeout(Exception):
    """A generation was still not terminal after the allowed number of polls."""

    def __init__(self, generation: dict[str, Any], polls: int) -> None:
        super().__init__(f"generation {generation['id']} still {generation['status']} after {polls} polls")
        self.generation = generation


class AurousClient:
    """Images, videos, files, characters and webhooks over the public API v1, with bounded retries."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        in_use_wait: float = 600.0,
    ) -> None:
        self.max_attempts, self.backoff, self.sleep = max_attempts, backoff, sleep
        self.in_use_wait = in_use_wait  # how long a keyed retry waits for a still-running original (seconds)
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers={"X-Api-Key": api_key}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AurousClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport --------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send with up to ``max_attempts`` tries: 429 waits ``Retry-After``; 5xx and dropped connections back off
        exponentially, but only for requests that are safe to repeat (GETs, creates with an ``Idempotency-Key``).

        A keyed retry whose original is still running gets ``409 idempotency_key_in_use`` (no ``Retry-After``): as the
        idempotency page says, back off 0.5 s doubling to 8 s and retry the same key until it replays the original,
        for at most ``in_use_wait`` seconds. Those waits do not count as attempts."""
        attempt, waited, pause = 0, 0.0, self.backoff
        while attempt < self.max_attempts:
            attempt += 1
            last = attempt == self.max_attempts
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError:
                if last or not idempotent:
                    raise
                self.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if response.is_success:
                return response
            error = AurousError.from_response(response)
            if idempotent and error.code == "idempotency_key_in_use" and waited < self.in_use_wait:
                delay = min(pause, self.in_use_wait - waited)
                self.sleep(delay)
                waited, pause, attempt = waited + delay, min(pause * 2, 8.0), attempt - 1  # not an attempt
                continue
            retry = response.status_code == 429 or (error.retryable and idempotent)
            if last or not retry:
                raise error
            delay = error.retry_after if error.retry_after is not None else self.backoff * 2 ** (attempt - 1)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any) -> Any:
        safe = method == "GET" if idempotent is None else idempotent
        return self._request(method, path, idempotent=safe, **kwargs).json()

    def _create(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        # Every create carries an Idempotency-Key, so a retry after a 5xx or a dropped connection never bills twice.
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        result: dict[str, Any] = self._json("POST", path, json=body, headers=headers, idempotent=True)
        return result

    # --- generations -------------------------------------------------------------------------------------

    def create_image(self, prompt: str, *, idempotency_key: str | None = None, **params: Any) -> dict[str, Any]:
        return self._create("/v1/images", {"prompt": prompt, **params}, idempotency_key)

    def create_video(
        self,
        prompt: str = "",
        *,
        video_lora_id: str = "seedance-1-pro",
        idempotency_key: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        return self._create("/v1/videos", {"video_lora_id": video_lora_id, "prompt": prompt, **params}, idempotency_key)

    def estimate_image(self, prompt: str, **params: Any) -> float:
        body = self._json("POST", "/v1/images/estimate", json={"prompt": prompt, **params}, idempotent=True)
        return float(body["estimated_cost"]["amount"])

    def estimate_video(self, prompt: str = "", *, video_lora_id: str = "seedance-1-pro", **params: Any) -> float:
        payload = {"video_lora_id": video_lora_id, "prompt": prompt, **params}
        body = self._json("POST", "/v1/videos/estimate", json=payload, idempotent=True)
        return float(body["estimated_cost"]["amount"])

    def get(self, gen_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/v1/images/{gen_id}")
        return result

    def cancel(self, gen_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", f"/v1/images/{gen_id}/cancel", idempotent=True)
        return result

    def list_generations(self, *, page_size: int = 20) -> Iterator[dict[str, Any]]:
        """Every generation of the team, newest first, following ``next_cursor`` page by page."""
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self._json("GET", "/v1/images", params=params)
            yield from page["data"]
            if not page["has_more"]:
                return
            params["starting_after"] = page["next_cursor"]

    def wait(
        self, gen_id: str, *, poll: Callable[[], object] = lambda: time.sleep(2), max_polls: int = 60
    ) -> dict[str, Any]:
        """Read the generation until it is terminal, calling ``poll()`` in between; at most ``max_polls`` waits."""
        generation = self.get(gen_id)
        for _ in range(max_polls):
            if generation["status"] in TERMINAL:
                return generation
            poll()
            generation = self.get(gen_id)
        if generation["status"] in TERMINAL:
            return generation
        raise WaitTimeout(generation, max_polls)

    def generate_image(
        self, prompt: str, *, poll: Callable[[], object], attempts: int = 1, max_polls: int = 60, **params: Any
    ) -> dict[str, Any]:
        """Create and wait; a ``failed`` generation is created afresh up to ``attempts`` times in all."""
        for attempt in range(1, attempts + 1):
            generation = self.wait(self.create_image(prompt, **params)["id"], poll=poll, max_polls=max_polls)
            if generation["status"] == "succeeded":
                return generation
            if generation["status"] != "failed" or attempt == attempts:
                raise GenerationFailed(generation)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- outputs -----------------------------------------------------------------------------------------

    def download(self, url: str) -> bytes:
        """The bytes behind an output URL (``output_urls[i]`` or ``output_video_url``)."""
        return self._request("GET", url, idempotent=True).content

    def download_output(self, gen_id: str, index: int = 0) -> bytes:
        """Download an output; on ``410 output_expired`` re-read the generation once for a fresh URL and retry."""
        url = self._output_url(self.get(gen_id), index)
        try:
            return self.download(url)
        except AurousError as error:
            if error.code != "output_expired":
                raise
        return self.download(self._output_url(self.get(gen_id), index))

    @staticmethod
    def _output_url(generation: dict[str, Any], index: int) -> str:
        if generation["media_type"] == "video":
            return str(generation["output_video_url"])
        return str(generation["output_urls"][index])

    # --- files, characters, webhooks, account ----------------------------------------------------------

    def upload_file(
        self, content: bytes, *, filename: str, content_type: str, purpose: str = "reference"
    ) -> dict[str, Any]:
        files = {"file": (filename, content, content_type)}
        result: dict[str, Any] = self._json("POST", "/v1/files", files=files, data={"purpose": purpose})
        return result

    def create_character(self, name: str, image: bytes, *, extension: str = "png") -> dict[str, Any]:
        """Upload one reference (ticket, then a signed PUT) and create a character from it."""
        content_type = "image/jpeg" if extension in {"jpg", "jpeg"} else f"image/{extension}"
        ticket = self._json(
            "POST",
            "/v1/characters/uploads/init",
            json={"filename": f"{name}.{extension}", "extension": extension, "content_type": content_type},
        )
        # The upload URL is signed and takes no API key.
        put = httpx.put(ticket["upload_url"], content=image, headers=ticket["upload_headers"], timeout=30.0)
        if not put.is_success:
            raise AurousError.from_response(put)
        result: dict[str, Any] = self._json(
            "POST", "/v1/characters", json={"name": name, "upload_ids": [ticket["upload_id"]]}
        )
        return result

    def register_webhook(self, url: str, events: list[str] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._json(
            "POST", "/v1/webhook_endpoints", json={"url": url, "events": events or ["*"]}
        )
        return result

    def balance(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/v1/balance")
        return result
