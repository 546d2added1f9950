"""The kit's pytest entry (``pytest11``): options, the ``real_api`` marker and the target fixtures.

``--aurous-target URL`` points tests at a target; ``--aurous-api-key KEY`` (or ``AUROUS_API_KEY``, read when the
fixture runs) authenticates; ``--aurous-profile live-safe|full`` (default: ``full`` on loopback, ``live-safe``
elsewhere) decides what may be sent; ``--aurous-allow-spend --aurous-max-credits N`` lets a live target be spent on
under a cap. Tests marked ``real_api`` are skipped unless ``--aurous-target`` is given.

The suites themselves run as ordinary tests, one per operation of the conformance suite and one per other suite,
so pytest's own ``--junitxml`` reports them::

    pytest --pyargs contracts.suite_tests --aurous-target https://api.aurous-labs.com --junitxml=contracts.xml
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from contracts.report import CheckResult

# pytest loads this module in every run of every project that installs the kit, so httpx, Hypothesis and
# Schemathesis are imported by the fixtures that use them, not here (issue 18: loading the plugins ≤ 100 ms).

__all__ = ["AurousTarget", "exempt_from_assert_rewrite"]

PROFILES = ("live-safe", "full")
# The top-level packages of our distribution, the one pytest marks for assertion rewriting (it has pytest11 entries),
# and the one module of them holding tests: the kit's suites as pytest tests, whose asserts stay rewritten.
OUR_PACKAGES = frozenset({"mockserver", "contracts"})
OUR_TESTS = "contracts.suite_tests"


@dataclass(frozen=True)
class AurousTarget:
    """The target given on the command line."""

    base_url: str
    api_key: str
    profile: str
    is_live: bool
    allow_spend: bool = False
    max_credits: float | None = None
    max_examples: int = 10
    options: tuple[tuple[str, str], ...] = ()  # suite settings: receiver_url, receiver_port, read_only_key


def exempt_from_assert_rewrite(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Keep pytest from rewriting the asserts of ``mockserver`` and ``contracts``; whether it could.

    pytest marks every top-level package of a distribution with a ``pytest11`` entry point for assertion rewriting,
    so that a plugin's helpers assert with introspection. Ours assert only invariants (for the type checker), no
    test relies on their messages, and rewriting costs a parse and a compile of every module the fixtures import
    whenever bytecode is not written (PYTHONDONTWRITEBYTECODE, read-only site-packages): ~0.35 s of a test using
    ``aurous_mock`` (issue 18 §2). pytest offers no opt-out (``PYTEST_DONT_REWRITE`` is read after the parse), so
    this unmarks the packages on the hook's private set and cache, then marks ``contracts.suite_tests`` again
    through the public ``pytest.register_assert_rewrite``. The private names are looked up defensively: should
    pytest rename them, our packages are rewritten as before, which costs time, never correctness.
    """
    hook = getattr(pluginmanager, "rewrite_hook", None)  # pytest's AssertionRewritingHook, or a dummy (plain mode)
    marked = getattr(hook, "_must_rewrite", None)
    cache = getattr(hook, "_marked_for_rewrite_cache", None)
    if not isinstance(marked, set) or not isinstance(cache, dict):
        return False
    marked.difference_update({name for name in marked if name.partition(".")[0] in OUR_PACKAGES})
    cache.clear()
    pytest.register_assert_rewrite(OUR_TESTS)
    return True


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Called as soon as the plugin is registered: before conftest files and tests import anything of ours.
    exempt_from_assert_rewrite(pluginmanager)
    group = parser.getgroup("aurous-contracts", "Aurous contract-test kit")
    group.addoption("--aurous-target", default=None, metavar="URL", help="base URL of the Aurous API target to check")
    group.addoption("--aurous-api-key", default=None, metavar="KEY", help="API key for the target (or AUROUS_API_KEY)")
    group.addoption(
        "--aurous-profile",
        default=None,
        choices=PROFILES,
        help="live-safe: reads only, no creates (default beyond loopback); full: the whole lifecycle",
    )
    group.addoption(
        "--aurous-allow-spend", action="store_true", help="let billable requests reach a live target (needs a cap)"
    )
    group.addoption("--aurous-max-credits", type=float, default=None, metavar="N", help="spending cap in credits")
    group.addoption(
        "--aurous-max-examples", type=int, default=10, metavar="N", help="generated cases per operation and mode"
    )
    group.addoption("--aurous-receiver-url", metavar="URL", help="webhooks suite, live target: public receiver URL")
    group.addoption("--aurous-receiver-port", metavar="N", help="the local port --aurous-receiver-url forwards to")
    group.addoption("--aurous-read-only-key", metavar="KEY", help="conventions suite, live target: a read-scope key")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_api: tests against the live Aurous API; skipped unless --aurous-target is given"
    )


@pytest.fixture
def aurous_target(request: pytest.FixtureRequest) -> AurousTarget:
    """The ``--aurous-target``; skips the test when none is given."""
    url = request.config.getoption("--aurous-target")
    if not url:
        pytest.skip("no --aurous-target given")
    from contracts.targets import Target

    key = request.config.getoption("--aurous-api-key") or os.environ.get("AUROUS_API_KEY", "")
    live = not Target.from_url(url).is_loopback
    profile = request.config.getoption("--aurous-profile") or ("live-safe" if live else "full")
    return AurousTarget(
        base_url=url.rstrip("/"),
        api_key=key,
        profile=profile,
        is_live=live,
        allow_spend=bool(request.config.getoption("--aurous-allow-spend")),
        max_credits=request.config.getoption("--aurous-max-credits"),
        max_examples=request.config.getoption("--aurous-max-examples"),
        options=tuple(
            (name, str(value))
            for name in ("receiver_url", "receiver_port", "read_only_key")
            if (value := request.config.getoption(f"--aurous-{name.replace('_', '-')}")) is not None
        ),
    )


@pytest.fixture
def aurous_check(aurous_target: AurousTarget) -> Callable[..., CheckResult]:
    """Run ``contracts.check`` on the target with the command-line options; keywords override them.

    Example (in a team's test)::

        def test_images_conform(aurous_check):
            result = aurous_check(suites=["conformance"], operations=["createImage", "getImage"])
            assert result.ok, result.summary()
    """
    from contracts.check import check  # loads Schemathesis only when a test asks for it
    from contracts.targets import Target

    def run(**kwargs: Any) -> CheckResult:
        options: dict[str, Any] = {
            "profile": aurous_target.profile,
            "allow_spend": aurous_target.allow_spend,
            "max_credits": aurous_target.max_credits,
            "max_examples": aurous_target.max_examples,
            "options": dict(aurous_target.options),
        }
        options.update(kwargs)
        target = Target.from_url(aurous_target.base_url, api_key=aurous_target.api_key or None)
        return check(target, **options)

    return run


@pytest.fixture
def aurous_lifecycle(aurous_target: AurousTarget) -> Callable[..., None]:
    """Run the lifecycle suite on the target (``live-safe``: no creates); keywords go to ``run_lifecycle``."""

    from contracts.lifecycle import run_lifecycle

    def run(**kwargs: Any) -> None:
        if aurous_target.profile == "live-safe":
            kwargs.setdefault("max_creates", 0)
        run_lifecycle(aurous_target.base_url, aurous_target.api_key, **kwargs)

    return run
