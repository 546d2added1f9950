"""The route index picks the same route as Starlette's in-order scan, for every route and some near misses."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route

from mockserver.api.routes import RouteIndex, routes

TABLE = routes()[1:]
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


def test_the_index_comes_first_and_the_table_follows_unchanged() -> None:
    table = routes()
    assert isinstance(table[0], RouteIndex)
    assert all(isinstance(route, Route) for route in table[1:])


@pytest.mark.parametrize("method", METHODS)
def test_index_finds_the_route_the_scan_finds_first(method: str) -> None:
    index = RouteIndex(TABLE)
    for path in _sample_paths():
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        match, child = index.matches(scope)
        expected = _scan(scope)
        if expected is None:
            assert match is Match.NONE, (method, path)
        else:
            assert match is Match.FULL, (method, path)
            assert child["route"] is expected, (method, path)
            assert child["path_params"] == expected.matches(scope)[1]["path_params"]
