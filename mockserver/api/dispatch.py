"""The direct route: a request whose path and method match a route exactly goes straight to its endpoint.

Starlette would take every request through its exception middleware, its router (one regex per route, in
order, until one matches), the route and the ``request_response`` wrapper: four ASGI layers and two
closures per request, about a third of a poll's CPU (bench/README.md). None of them does anything for a
request that matches a route fully, so :class:`DirectRoutes` sits in front of them and calls the endpoint
itself; anything it does not match exactly (404, 405, slash redirects) goes on to Starlette unchanged.

It finds a route among the few that can match the path: a route can only match paths that start with the
literal text before its first ``{``, so routes are filed under the first two segments of that text (when
both are whole) and a path tries only its own two segments' routes, in table order. A route without
parameters matches its own path only, so a string comparison stands in for its regex.

Routes never change, so which route a method and path match (and its path parameters) is a function of those
two: the last :data:`REMEMBERED` answers are kept, and a client polling the same resource matches it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
Entry = tuple[Route, str | None]  # a route and, when it has no parameters, the one path it matches
REMEMBERED = 4096  # full matches kept (a method, a path, its route and parameters): all forgotten when full


class DirectRoutes:
    """ASGI middleware in front of Starlette's router: full matches call the route's endpoint directly.

    Behaves as the router behind it would for those requests: the same route wins (the first full match in
    table order), ``scope`` gets the same ``endpoint``, ``path_params`` and ``route``, and an
    ``HTTPException`` raised by the endpoint is answered by ``on_http_error``, the app's handler for it.
    """

    def __init__(self, app: ASGIApp, table: list[BaseRoute], on_http_error: ErrorHandler) -> None:
        self.app = app
        self.on_http_error = on_http_error
        routes = [route for route in table if isinstance(route, Route)]
        if len(routes) != len(table):
            raise TypeError("only Route entries can be dispatched directly")
        by_key: dict[tuple[str, ...], list[int]] = {}
        anywhere: list[int] = []  # routes whose first two segments are not both literal: tried for every path
        for position, route in enumerate(routes):
            key = _filing_key(route.path)
            (anywhere if key is None else by_key.setdefault(key, [])).append(position)
        self._anywhere = [_entry(routes[i]) for i in anywhere]
        self._by_key = {key: [_entry(routes[i]) for i in sorted(found + anywhere)] for key, found in by_key.items()}
        self._remembered: dict[tuple[str, str], tuple[Route, dict[str, object]]] = {}

    def match(self, scope: Scope) -> Route | None:
        """The route that fully matches ``scope`` (its path params and endpoint put into ``scope``), if any."""
        path = get_route_path(scope)
        key = (scope["method"], path)
        remembered = self._remembered.get(key)
        if remembered is not None:
            route, params = remembered
        else:
            found = self._scan(scope, path)
            if found is None:
                return None
            route, params = found
            if len(self._remembered) >= REMEMBERED:
                self._remembered.clear()
            self._remembered[key] = found
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {**scope.get("path_params", {}), **params}  # a dict of its own, as Starlette's
        scope["route"] = route
        return route

    def _scan(self, scope: Scope, path: str) -> tuple[Route, dict[str, object]] | None:
        for route, fixed in self._by_key.get(tuple(path.split("/", 3)[1:3]), self._anywhere):
            if fixed is not None and fixed != path:
                continue
            found, child = route.matches({**scope, "path_params": {}})  # this route's own parameters only
            if found is Match.FULL:
                return route, child["path_params"]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.match(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        endpoint: Endpoint = route.endpoint
        try:
            response = await endpoint(request)
        except HTTPException as exc:  # the app's handler answers it in the envelope, as it would behind
            response = await self.on_http_error(request, exc)
        await response(scope, receive, send)


def _entry(route: Route) -> Entry:
    return route, None if "{" in route.path else route.path


def _filing_key(path: str) -> tuple[str, ...] | None:
    """The first two segments of every path ``path`` can match, or None when they are not fixed."""
    literal, brace, _ = path.partition("{")
    if not brace:
        return tuple(literal.split("/", 3)[1:3])  # no parameter: it matches itself only
    if literal.count("/") < 3:
        return None  # "/v1/{x}" or "/v1/a{x}/…": the second segment is not fixed
    return tuple(literal.split("/", 3)[1:3])
