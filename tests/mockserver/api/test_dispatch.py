"""The direct route picks the same route as Starlette's in-order scan, for every route and some near misses."""

from __future__ import annotations

import re

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from mockserver.api import dispatch
from mockserver.api.dispatch import DirectRoutes
from mockserver.api.routes import routes

TABLE = routes()
METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"]


def _sample_paths() -> list[str]:
    paths = ["/", "/v1", "/v1/", "/v1/images/", "//v1/balance", "/v1/balance/", "/nowhere", "/_mock", "/_mock/"]
    for route in TABLE:
        assert isinstance(route, Route)
        for value in ("img_01ABC", "estimate", "a/b", "0"):
            path = re.sub(r"\{[^}]+\}", value, route.path)
            paths += [path, path + "/", path + "x"]
    return sorted(set(paths))


def _scan(scope: dict[str, object]) -> Route | None:
    for route in TABLE:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            assert isinstance(route, Route)
            return route
    return None


async def _unused(*_: object) -> None:
    raise AssertionError("not reached: only match() is called")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("passes", [1, 2], ids=["scanned", "remembered"])
def test_index_finds_the_route_the_scan_finds_first(method: str, passes: int) -> None:
    direct = DirectRoutes(_unused, TABLE, _unused)
    for path in _sample_paths() * passes:  # a second pass answers from what the first one remembered
        scope: dict[str, object] = {"type": "http", "method": method, "path": path, "root_path": ""}
        expected = _scan(scope)
        found = direct.match(scope)
        assert found is expected, (method, path)
        if expected is not None:
            child = expected.matches(scope)[1]
            assert scope["route"] is expected
            assert scope["path_params"] == child["path_params"]
            assert scope["endpoint"] is child["endpoint"]


def test_remembered_matches_hand_each_request_parameters_of_its_own_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "REMEMBERED", 3)
    direct = DirectRoutes(_unused, TABLE, _unused)
    first: dict[str, object] = {"type": "http", "method": "GET", "path": "/v1/images/img_1", "root_path": ""}
    assert direct.match(first) is not None
    params = first["path_params"]
    assert isinstance(params, dict)
    params["id"] = "changed by a handler"
    again: dict[str, object] = {"type": "http", "method": "GET", "path": "/v1/images/img_1", "root_path": ""}
    assert direct.match(again) is first["route"]
    assert again["path_params"] == {"id": "img_1"}
    for n in range(10):
        direct.match({"type": "http", "method": "GET", "path": f"/v1/images/img_{n}", "root_path": ""})
        assert len(direct._remembered) <= 3


def test_a_full_match_is_answered_without_the_app_behind_and_http_errors_go_to_the_handler() -> None:
    async def ok(request: Request) -> Response:
        return PlainTextResponse(f"ok {request.path_params['id']}")

    async def refuse(request: Request) -> Response:
        raise HTTPException(400, "bad form")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse(f"handled {exc.status_code} {exc.detail}", status_code=exc.status_code)

    behind: list[str] = []

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        behind.append(scope["path"])
        await PlainTextResponse("behind", status_code=404)(scope, receive, send)

    table: list[BaseRoute] = [Route("/things/{id}", ok, methods=["GET"]), Route("/refuse", refuse, methods=["POST"])]
    client = TestClient(DirectRoutes(fallback, table, on_http_error))
    assert client.get("/things/7").text == "ok 7"
    refused = client.post("/refuse")
    assert (refused.status_code, refused.text) == (400, "handled 400 bad form")
    assert client.get("/refuse").text == "behind"  # a method the route lacks: Starlette's 405 is behind
    assert client.get("/things/7/").text == "behind"
    assert behind == ["/refuse", "/things/7/"]
