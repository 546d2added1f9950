"""The dashboard in a real browser: Debian's chromium driven by Playwright, against uvicorn on 127.0.0.1.

Generations appear without a reload and move when the page advances the clock; a video plays; a webhook's attempts
are read and redelivered; the journal copies as curl; scenarios and snapshots; the overview opens a team; 10,000
generations open as one page; every value received shows as text (XSS probes); the guard keeps the page and its data
from anyone beyond loopback without the token; another site cannot drive it; and no page logs an error.

One browser per module, one context; ``AUROUS_UI_SCREENSHOTS=1`` writes the screenshots shown in the README to docs/.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mockserver import Settings, create_app
from mockserver.core.requests import ImageRequest
from mockserver.testing import ServerThread
from tests.conftest import new_api_key

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
XSS = "<img src=x onerror=window.__pwned=1>"
RECEIVER_XSS = "<script>window.__pwned=2</script><b onmouseover=alert(1)>ok</b>"
WAIT_MS = 10_000


def settings(**overrides: Any) -> Settings:
    defaults: dict[str, Any] = {
        "clock": "virtual",
        "seed": 17,
        "rate_limits_enabled": False,
        "image_pending_seconds": 2,
        "image_processing_seconds": 8,
        "video_pending_seconds": 3,
        "video_processing_seconds": 20,
        "webhook_poll_seconds": 0.05,
    }
    return Settings(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def context(browser: Any) -> Iterator[Any]:
    opened = browser.new_context(viewport={"width": 1440, "height": 900})
    opened.set_default_timeout(WAIT_MS)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(settings())


@pytest.fixture(scope="module")
def base(app: Starlette) -> Iterator[str]:
    with ServerThread(app, name="aurous-mock-dashboard-e2e") as server:
        yield server.base_url


class Page:
    """A browser tab that records console errors and page exceptions; none may happen unless a test allows it."""

    def __init__(self, context: Any) -> None:
        self.tab = context.new_page()
        self.errors: list[str] = []
        self.allowed: Callable[[str], bool] = lambda text: False
        self.tab.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.tab.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, base: str, key: str) -> Any:
        self.tab.goto(f"{base}/_mock/ui#key={key}")
        self.expect("#clock-now").not_to_have_text("—")
        return self.tab

    def expect(self, selector: str) -> Any:
        from playwright.sync_api import expect

        return expect(self.tab.locator(selector))

    def shot(self, name: str) -> None:
        if os.environ.get("AUROUS_UI_SCREENSHOTS") == "1":
            self.tab.screenshot(path=str(DOCS / f"dashboard-{name}.png"))

    def unexpected_errors(self) -> list[str]:
        return [text for text in self.errors if not self.allowed(text)]


@pytest.fixture
def page(context: Any) -> Iterator[Page]:
    tab = Page(context)
    yield tab
    errors = tab.unexpected_errors()
    tab.tab.close()
    assert errors == [], errors


@pytest.fixture
def api(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers={"X-Api-Key": new_api_key()}, timeout=30) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def key_of(api: httpx.Client) -> str:
    return str(api.headers["X-Api-Key"])


# --- generations, clock, XSS ----------------------------------------------------------------------------------


def test_generations_appear_live_and_succeed_when_the_page_advances_the_clock(page: Page, base: str, api) -> None:
    tab = page.open(base, key_of(api))
    page.expect("#generations tbody").to_contain_text("Nothing yet.")
    ids = [ok(api.post("/v1/images", json={"prompt": p}), 201)["id"] for p in ("a lighthouse at dusk", XSS, "a fox")]
    page.expect("#generations tbody tr[data-status='pending']").to_have_count(3)  # no reload: the page polls
    page.expect("#gen-total").to_have_text("3 generations")
    tab.click("button[data-advance='60']")
    page.expect("#generations tbody tr[data-status='succeeded']").to_have_count(3)
    page.expect("#clock-now").to_have_text("2026-" + ok(api.get("/_mock/clock"))["now"][5:])
    page.expect("#generations td img").to_have_count(3)
    tab.wait_for_function(
        "() => [...document.querySelectorAll('#generations td img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    # The probe shows as text, and nothing it carries became an element or ran.
    assert tab.locator("td.prompt").all_text_contents().count(XSS) == 1
    assert tab.locator("img[src='x']").count() == 0
    assert tab.evaluate("window.__pwned") is None
    tab.locator(f"#generations tr[data-id='{ids[1]}']").click()
    shown = json.loads(tab.locator("#gen-detail pre").text_content() or "")
    assert shown == ok(api.get(f"/v1/images/{ids[1]}"))  # exactly as the public API returns it
    page.shot("generations")


def test_chat_completions_appear_live_and_show_as_the_public_api_returns_them(page: Page, base: str, api) -> None:
    chat = {"model": "aurous-grow-2.0-pro", "max_tokens": 24}
    tab = page.open(base, key_of(api))
    tab.click("#tabs button[data-tab='chat']")
    page.expect("#chat tbody").to_contain_text("Nothing yet.")
    plain = ok(api.post("/v1/chat/completions", json={**chat, "messages": [{"role": "user", "content": "Hi there"}]}))
    probe = {**chat, "stream": True, "messages": [{"role": "user", "content": XSS}]}
    with api.stream("POST", "/v1/chat/completions", json=probe) as streamed:
        assert streamed.status_code == 200
        frames = [line[len("data: ") :] for line in streamed.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"  # read to the end: the stream settled as completed
    probe_id = json.loads(frames[0])["id"]
    page.expect("#chat tbody tr[data-status='completed']").to_have_count(2)  # no reload: the page polls
    page.expect("#chat-total").to_have_text("2 completions")
    # The probe shows as text, and nothing it carries became an element or ran.
    assert tab.locator("#chat td.prompt").all_text_contents() == [XSS, "Hi there"]
    assert tab.locator("img[src='x']").count() == 0
    assert tab.evaluate("window.__pwned") is None
    for completion_id in (probe_id, plain["id"]):
        tab.locator(f"#chat tr[data-id='{completion_id}']").click()
        page.expect("#chat-detail h3").to_contain_text(completion_id)
        shown = json.loads(tab.locator("#chat-detail pre.resource").text_content() or "")
        assert shown == ok(api.get(f"/v1/chat/completions/{completion_id}"))  # exactly as the public API returns it
    assert shown == plain
    page.expect("#chat-detail pre.chat-prompt").to_have_text("Hi there")
    page.expect(f"#chat tr[data-id='{probe_id}'] td:nth-child(5)").to_have_text("yes")
    assert tab.evaluate("window.__pwned") is None
    page.shot("chat")
    tab.click("#tabs button[data-tab='credits']")  # their usage rows, beside the ledger
    page.expect("#llm-usage tbody tr[data-type='chat']").to_have_count(2)
    page.expect(f"#llm-usage tr[data-id='{plain['id']}']").to_contain_text(str(plain["usage"]["credits_charged"]))


def test_a_chat_completion_in_flight_shows_held_then_settles_without_a_reload(page: Page, base: str, api) -> None:
    """The row appears while the reply is still being produced (its credits held; the scripted first token gives the
    page's 1.5 s poll time to see it), and turns completed, charged, when it settles."""
    slow = {
        "model": "aurous-grow-2.0-pro",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "wait [mock:slow_first_token=4000]"}],
    }
    tab = page.open(base, key_of(api))
    tab.click("#tabs button[data-tab='chat']")
    page.expect("#chat tbody").to_contain_text("Nothing yet.")
    answers: list[Any] = []
    sender = threading.Thread(target=lambda: answers.append(api.post("/v1/chat/completions", json=slow)))
    sender.start()
    try:
        page.expect("#chat tbody tr[data-status='in_progress']").to_have_count(1)
        page.expect("#chat tbody tr[data-status='in_progress'] td:nth-child(8)").to_contain_text("(held)")
    finally:
        sender.join(timeout=30)
    done = ok(answers[0])
    page.expect(f"#chat tbody tr[data-id='{done['id']}'][data-status='completed']").to_have_count(1)
    page.expect(f"#chat tbody tr[data-id='{done['id']}'] td:nth-child(8)").to_contain_text("(charged)")


def test_statuses_move_on_a_running_clock_without_any_action(page: Page) -> None:
    """Pending → processing → succeeded on the system clock: the page re-reads what it shows in flight by itself."""
    running = create_app(settings(clock="system", image_pending_seconds=1.0, image_processing_seconds=3.0))
    with ServerThread(running, name="dashboard-running") as server:
        key = new_api_key()
        tab = page.open(server.base_url, key)
        ok(httpx.post(f"{server.base_url}/v1/images", json={"prompt": "in flight"}, headers={"X-Api-Key": key}), 201)
        page.expect("#generations tbody tr[data-status='processing']").to_have_count(1)
        page.expect("#generations tbody tr[data-status='succeeded']").to_have_count(1)
        page.expect("#generations td img").to_have_count(1)
        tab.goto("about:blank")  # stop polling before the server stops


def test_filters_and_the_clock_controls(page: Page, base: str, api) -> None:
    tab = page.open(base, key_of(api))
    ok(api.post("/v1/images", json={"prompt": "one"}), 201)
    ok(api.post("/_mock/clock/advance", json={"seconds": 60}))
    ok(api.post("/v1/images", json={"prompt": "two"}), 201)
    page.expect("#generations tbody tr[data-status]").to_have_count(2)
    tab.select_option("#gen-status", "succeeded")
    page.expect("#generations tbody tr[data-status]").to_have_count(1)
    page.expect("#generations tbody tr[data-status='succeeded']").to_have_count(1)
    tab.select_option("#gen-status", "")
    tab.fill("#advance-by", "90s")
    tab.click("#advance-form button")
    page.expect("#generations tbody tr[data-status='succeeded']").to_have_count(2)
    tab.click("#freeze")
    page.expect("#clock-state").to_have_text("frozen")
    assert ok(api.get("/_mock/clock"))["frozen"] is True
    tab.fill("#set-to", "2030-01-01T00:00:00Z")
    tab.click("#set-form button")
    page.expect("#clock-now").to_have_text("2030-01-01T00:00:00Z")
    tab.click("#freeze")
    page.expect("#clock-state").to_have_text("running")


def test_a_video_plays_in_the_page(page: Page, base: str, api) -> None:
    body = {"video_lora_id": "seedance-1-pro", "prompt": "surf at dawn", "resolution": "480p", "duration": 5}
    gen = ok(api.post("/v1/videos", json=body), 201)
    ok(api.post("/_mock/clock/advance", json={"seconds": 120}))
    tab = page.open(base, key_of(api))
    tab.select_option("#gen-kind", "video")
    tab.locator(f"#generations tr[data-id='{gen['id']}']").click()
    page.expect("#player").to_have_count(1)
    tab.evaluate("document.getElementById('player').play()")
    tab.wait_for_function(
        "() => { const p = document.getElementById('player'); return p.readyState >= 2 && p.currentTime > 0.2; }",
        timeout=30_000,
    )
    assert tab.evaluate("document.getElementById('player').videoWidth") > 0


# --- webhooks -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback answering 200 with an XSS probe in its body; what it received."""
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        with lock:
            received.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(RECEIVER_XSS, media_type="text/html")

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with ServerThread(app, name="dashboard-receiver", lifespan="off") as server:
        yield f"{server.base_url}/hook", received


def test_webhook_attempts_are_read_and_redelivered_from_the_page(page: Page, base: str, api, receiver) -> None:
    url, received = receiver
    ok(api.post("/v1/webhook_endpoints", json={"url": url, "events": ["image.completed"]}), 201)
    ok(api.post("/v1/images", json={"prompt": "hooked"}), 201)
    tab = page.open(base, key_of(api))
    tab.click("button[data-advance='60']")
    tab.click("#tabs button[data-tab='webhooks']")
    page.expect("#endpoints tbody tr").to_contain_text(url)
    page.expect("#events .event").to_have_count(1)
    page.expect("#events .event table.delivery").to_have_count(1)
    tab.locator("#events tr.attempt").first.click()
    page.expect("#attempt-detail .signature").to_contain_text("Aurous-Webhook-Signature: t=")
    page.expect("#attempt-detail").to_contain_text(RECEIVER_XSS)  # the answer, as text
    assert tab.evaluate("window.__pwned") is None
    assert tab.locator("#attempt-detail b, #attempt-detail script").count() == 0
    shown = json.loads(tab.locator("#attempt-detail pre").first.text_content() or "")
    assert shown["event"] == "image.completed"
    before = len(received)
    tab.click("#events button.redeliver")
    page.expect("#events .event table.delivery").to_have_count(2)  # a new delivery, attempted by the background task
    assert len(received) == before + 1
    tab.click("#flush")
    page.expect("#status").to_have_text("")
    page.shot("webhooks")


# --- journal, credits, scenarios, snapshots, teams -------------------------------------------------------------


def test_journal_filters_and_copies_as_curl(page: Page, base: str, api) -> None:
    key = key_of(api)
    ok(api.post("/v1/images", json={"prompt": XSS}), 201)
    ok(api.get("/v1/balance"))
    tab = page.open(base, key)
    tab.click("#tabs button[data-tab='journal']")
    page.expect("#journal tbody tr[data-operation='createImage']").to_have_count(1)
    page.expect("#journal tbody tr[data-operation='getBalance']").to_have_count(1)
    assert tab.locator("#journal tr[data-operation='mock_changes']").count() == 0  # the page's reads are not journaled
    tab.select_option("#jnl-method", "POST")
    page.expect("#journal tbody tr[data-operation]").to_have_count(1)
    tab.locator("#journal tbody tr[data-operation='createImage']").click()
    curl = tab.locator("#jnl-detail pre.curl").text_content() or ""
    assert curl.startswith(f"curl -X POST '{base}/v1/images'")
    assert f"'x-api-key: {key}'" in curl
    page.expect("#jnl-detail").to_contain_text(XSS)
    assert tab.evaluate("window.__pwned") is None
    page.shot("journal")


def test_credits_show_balance_and_ledger(page: Page, base: str, api) -> None:
    ok(api.post("/v1/images", json={"prompt": "x"}), 201)
    tab = page.open(base, key_of(api))
    tab.click("#tabs button[data-tab='credits']")
    page.expect("#balance dd[data-field='held']").to_have_text("1")
    page.expect("#ledger tbody tr[data-type='hold']").to_have_count(1)
    tab.click("button[data-advance='60']")
    page.expect("#ledger tbody tr[data-type='charge']").to_have_count(1)
    page.expect("#balance dd[data-field='balance']").to_have_text("999")
    page.expect("#balance dd[data-field='held']").to_have_text("0")


def test_scenarios_and_snapshots_from_the_page(page: Page, base: str, api) -> None:
    tab = page.open(base, key_of(api))
    tab.click("#tabs button[data-tab='scenarios']")
    tab.fill("#sc-operation", "createImage")
    tab.fill("#sc-then", "fail=Policy <b>x</b>")
    tab.click("#scenario-form button")
    page.expect("#scenarios tbody tr").to_contain_text("Policy <b>x</b>")
    [rule] = ok(api.get("/_mock/scenarios"))["data"]
    assert rule["when"]["operation"] == "createImage"
    tab.click("#snapshot")
    page.expect("#snapshots tbody tr button").to_have_count(2)
    tab.locator("#scenarios tbody tr button").click()
    page.expect("#scenarios tbody").to_contain_text("Nothing yet.")
    tab.locator("#snapshots tbody tr button", has_text="Restore").click()
    page.expect("#scenarios tbody tr").to_contain_text("Policy <b>x</b>")  # the snapshot had the rule
    page.shot("scenarios")


def test_the_overview_lists_teams_and_a_link_opens_one(page: Page, base: str, api) -> None:
    other = new_api_key()
    ok(httpx.post(f"{base}/v1/images", json={"prompt": "other team"}, headers={"X-Api-Key": other}), 201)
    other_id = ok(httpx.get(f"{base}/_mock/team", headers={"X-Api-Key": other}))["id"]
    tab = page.open(base, key_of(api))
    tab.click("#tabs button[data-tab='teams']")
    row = page.expect(f"#teams tbody tr[data-team='{other_id}']")
    row.to_contain_text(other[:14] + "…")
    assert other not in (tab.locator("#teams").text_content() or "")  # a preview, never the whole key
    tab.evaluate(f"location.hash = '#key={other}'")  # the link a failing test prints
    tab.click("#tabs button[data-tab='generations']")
    page.expect("#generations tbody tr td.prompt").to_have_text(["other team"])
    assert tab.input_value("#key") == other


def test_ten_thousand_generations_open_as_one_page(page: Page, base: str, app: Starlette) -> None:
    key = new_api_key()
    emulator = app.state.emulator
    team, api_key = emulator.accounts.authenticate(key)
    emulator.accounts.configure(team, billing_mode="exempt", default_api_version=None)
    now = emulator.accounts.now(team)
    meta = {"now": now, "version": "2026-05-15", "request_id": "req_seed", "api_key_id": api_key.id, "base_url": base}
    for i in range(10_000):
        emulator.generations.create_image(team, ImageRequest(prompt=f"bulk {i}"), meta)
    tab = page.open(base, key)
    page.expect("#gen-total").to_have_text("10000 generations")
    page.expect("#generations tbody tr[data-status]").to_have_count(50)
    page.expect("#generations tbody tr td.prompt").to_have_text([f"bulk {9999 - i}" for i in range(50)])
    tab.click("#gen-older")
    page.expect("#generations tbody tr td.prompt").to_have_text([f"bulk {9949 - i}" for i in range(50)])
    tab.click("#gen-newer")
    page.expect("#generations tbody tr td.prompt").to_have_text([f"bulk {9999 - i}" for i in range(50)])


# --- the guard and other sites ------------------------------------------------------------------------------


def test_beyond_loopback_nothing_answers_without_a_token(page: Page) -> None:
    with ServerThread(create_app(settings(host="0.0.0.0")), name="dashboard-remote") as remote:
        for path in ("/_mock/ui", "/_mock/ui/static/dashboard.js"):
            response = page.tab.goto(f"{remote.base_url}{path}")
            assert response is not None
            assert response.status == 404
        page.allowed = lambda text: "404" in text


def test_beyond_loopback_with_a_token_the_page_asks_for_it_and_sends_it_as_a_header(page: Page, api) -> None:
    page.allowed = lambda text: "401" in text  # the reads refused before the token is typed
    with ServerThread(create_app(settings(host="0.0.0.0", control_token="s3cret")), name="dashboard-token") as remote:
        tab = page.tab
        tab.goto(f"{remote.base_url}/_mock/ui#key={key_of(api)}")
        page.expect("#token-form").to_be_visible()
        page.expect("#clock-now").to_have_text("—")
        page.expect("#status").to_contain_text("401")
        sent: list[str] = []
        tab.on("request", lambda request: sent.append(request.url))
        tab.fill("#token", "s3cret")
        tab.click("#token-form button")
        page.expect("#clock-now").not_to_have_text("—")
        page.expect("#token-form").to_be_hidden()
        assert sent
        assert all("s3cret" not in url for url in sent)
        tab.goto("about:blank")  # stop polling before the server stops


def test_another_site_cannot_drive_the_control_plane(page: Page, base: str, api) -> None:
    """A page on another origin posts a form and sends fetches to loopback: nothing moves."""
    gen = ok(api.post("/v1/images", json={"prompt": "keep me"}), 201)
    clock = ok(api.get("/_mock/clock"))["now"]
    key = key_of(api)
    evil = f"""<!doctype html><form id=f method=POST action="{base}/_mock/reset?global=true" enctype="text/plain">
    <input name='{{"seconds":3600,"x":"' value='"}}'></form>
    <script>
    window.results = Promise.all([
      fetch("{base}/_mock/clock/advance", {{method: "POST", headers: {{"X-Api-Key": "{key}",
        "Content-Type": "application/json"}}, body: '{{"seconds":3600}}'}}).then(r => r.status, e => "blocked"),
      fetch("{base}/_mock/clock/advance", {{method: "POST", mode: "no-cors", headers: {{"X-Api-Key": "{key}"}},
        body: '{{"seconds":3600}}'}}).then(r => r.type, e => "blocked"),
    ]);
    </script>"""
    page.allowed = lambda text: True  # the refused requests log errors in the evil page, by design
    tab = page.tab
    tab.route("http://evil.test/", lambda route: route.fulfill(body=evil, content_type="text/html"))
    tab.goto("http://evil.test/")
    results = tab.evaluate("window.results")
    assert results[0] == "blocked"  # the preflight fails: no CORS
    with tab.expect_navigation():
        tab.evaluate("document.getElementById('f').submit()")
    assert ok(api.get("/_mock/clock"))["now"] == clock
    assert ok(api.get(f"/v1/images/{gen['id']}"))["prompt"] == "keep me"
