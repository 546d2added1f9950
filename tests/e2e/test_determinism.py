"""``serve --seed``: two fresh processes given the same requests answer the same bytes (ids, instants, tokens, media).

Under ``--clock virtual`` a seeded clock starts at ``SEEDED_START`` (unless ``clock_start`` says otherwise), so even
the time part of every ULID repeats; under the system clock only what does not come from the wall clock repeats.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from ulid import ULID

from mockserver.clock import SEEDED_START
from tests.helpers import cli_process

pytestmark = pytest.mark.e2e

BANNER = re.compile(r"^aurous-mock \S+ serving on (http://127\.0\.0\.1:\d+)$")
KEY = "al_live_determinism"
ULID_IN_TEXT = re.compile(r"\b[a-z]+_([0-9A-HJKMNP-TV-Z]{26})\b")
# Ids minted on the team's clock (team_ and key_ ids are derived from the key and carry no instant).
TIMED_ID = re.compile(r"\b(?:img|vid|req|we|hold|uev|file|upl)_([0-9A-HJKMNP-TV-Z]{26})\b")


def _exchange(client: httpx.Client, method: str, url: str, **options: Any) -> dict[str, Any]:
    """One answer, with the server's own base URL (the port differs per process) replaced by ``{base}``."""
    response = client.request(method, url, **options)
    if response.headers.get("content-type", "").startswith("application/json"):
        body: Any = json.loads(response.text.replace(str(client.base_url).rstrip("/"), "{base}"))
    else:
        body = hashlib.sha256(response.content).hexdigest()  # media: the bytes' hash
    shown = url.replace(str(client.base_url).rstrip("/"), "{base}")
    return {"request": f"{method} {shown}", "status": response.status_code, "body": body}


def _journey(base_url: str) -> list[dict[str, Any]]:
    """The same request sequence against one emulator; every answer's status and body (media as a hash)."""
    record: list[dict[str, Any]] = []
    headers = {"X-Api-Key": KEY}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        image = _exchange(client, "POST", "/v1/images", json={"prompt": "a lighthouse", "count": 2})
        video = _exchange(client, "POST", "/v1/videos", json={"video_lora_id": "seedance-1-pro", "duration": 5})
        record += [image, video]
        endpoint = {"url": "https://example.com/hooks", "events": ["*"]}
        record.append(_exchange(client, "POST", "/v1/webhook_endpoints", json=endpoint))
        record.append(_exchange(client, "POST", "/_mock/keys", json={"scope": "read"}))
        record.append(_exchange(client, "POST", "/v1/images", json={"prompt": 7}))  # an error: its request id
        record.append(_exchange(client, "POST", "/_mock/clock/advance", json={"seconds": 900}))
        done_image = _exchange(client, "GET", f"/v1/images/{image['body']['id']}")
        done_video = _exchange(client, "GET", f"/v1/videos/{video['body']['id']}")
        record += [done_image, done_video]
        png = client.get(done_image["body"]["output_urls"][0].format(base=base_url))
        record.append(_exchange(client, "GET", done_image["body"]["output_urls"][0].format(base=base_url)))
        record.append(_exchange(client, "GET", done_video["body"]["output_video_url"].format(base=base_url)))
        upload = {"file": ("ref.png", png.content, "image/png")}
        record.append(_exchange(client, "POST", "/v1/files", files=upload, data={"purpose": "reference"}))
        ticket = {"filename": "ref.png", "extension": "png", "content_type": "image/png"}
        record.append(_exchange(client, "POST", "/v1/characters/uploads/init", json=ticket))
        record.append(_exchange(client, "GET", "/v1/balance"))
        record.append(_exchange(client, "GET", "/v1/usage/events"))
        record.append(_exchange(client, "GET", "/_mock/clock"))
    return record


def _run_twice(tmp_path: Path, *options: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def one(name: str) -> list[dict[str, Any]]:
        directory = tmp_path / name
        directory.mkdir()
        with cli_process(directory, "serve", "--port", "0", "--log-level", "warning", *options) as cli:
            return _journey(cli.first_line(BANNER).group(1))

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(one, ["first", "second"])
    return first, second


def _ulids(record: list[dict[str, Any]]) -> list[str]:
    return ULID_IN_TEXT.findall(repr(record))


def test_seeded_virtual_runs_answer_identical_bodies(tmp_path: Path) -> None:
    first, second = _run_twice(tmp_path, "--seed", "42", "--clock", "virtual")
    statuses = [step["status"] for step in first]
    assert statuses == [201, 201, 201, 201, 400, 200, 200, 200, 200, 200, 201, 200, 200, 200, 200], first
    assert first == second  # ids, request ids, secrets, signed URLs, instants, timings and the media bytes' hashes
    assert first[-1]["body"]["now"] == "2026-06-01T00:15:00Z"  # SEEDED_START + the 900 s advance
    # Every ULID's time part is on the seeded timeline (SEEDED_START and the 15 minutes after it).
    instants = {ULID.from_str(text).datetime for text in TIMED_ID.findall(repr(first))}
    assert instants
    assert all(SEEDED_START <= at <= SEEDED_START.replace(minute=15) for at in instants), sorted(instants)


def test_seeded_system_clock_repeats_all_but_the_wall_clock(tmp_path: Path) -> None:
    """Documented: under the system clock ``--seed`` repeats the random parts (ids' last 16 characters, secrets,
    keys, timings, media); instants, ids' time parts and token expiries follow the wall clock."""
    first, second = _run_twice(tmp_path, "--seed", "42")
    assert [step["status"] for step in first] == [step["status"] for step in second]
    assert [text[10:] for text in _ulids(first)] == [text[10:] for text in _ulids(second)]
    assert first[2]["body"]["secret"] == second[2]["body"]["secret"]
    assert first[3]["body"]["key"] == second[3]["body"]["key"]
