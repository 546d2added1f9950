"""What loading the pytest plugins costs (issue 18 §2), asserted as what they import, never as timings.

bench/plugin_cost.py measures the time; these tests keep the cause of the cost from coming back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from contracts.plugin import exempt_from_assert_rewrite
from mockserver.settings import Settings
from mockserver.testing import AurousMock, ControlError, EmulatorThread

pytest_plugins = ["pytester"]

# What the plugin modules must not load: the emulator, its server and clients, the kit's heavy half.
HEAVY = (
    "mockserver.app",
    "mockserver.settings",
    "mockserver.testing",
    "pydantic",
    "uvicorn",
    "starlette",
    "httpx",
    "websockets",
    "yaml",
    "contracts.lifecycle",
    "contracts.targets",
    "contracts.listen",
    "schemathesis",
)


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules present in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import sys, json\n{code}\nprint(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_loading_both_plugin_modules_imports_nothing_heavy() -> None:
    assert _loaded_after("import mockserver.pytest_plugin, contracts.plugin") == []


def test_package_names_are_still_there_on_first_use() -> None:
    code = "import mockserver, contracts\nassert mockserver.create_app and contracts.Listener and contracts.sign"
    assert set(_loaded_after(code)) >= {"mockserver.app", "contracts.listen"}


def test_pytest_run_with_the_plugins_imports_nothing_heavy_until_a_fixture_is_used(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_plain():\n"
        "    assert 'mockserver.pytest_plugin' in sys.modules and 'contracts.plugin' in sys.modules\n"
        "    heavy = ('mockserver.app', 'mockserver.testing', 'contracts.lifecycle')\n"
        "    assert [m for m in heavy if m in sys.modules] == []\n"
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_emulator_starts_and_declares_keys_without_httpx_or_websockets() -> None:
    assert "httpx" not in _loaded_after("import mockserver.testing")
    code = (
        "from mockserver.settings import Settings\n"
        "from mockserver.testing import AurousMock, EmulatorThread\n"
        "with EmulatorThread(Settings(clock='virtual', host='127.0.0.1', port=0)) as server:\n"
        "    AurousMock.fresh(server.base_url)\n"
        "    AurousMock.fresh(server.base_url, seed=7, name='a test')\n"
    )
    loaded = _loaded_after(code)
    assert "uvicorn" in loaded
    assert "httpx" not in loaded
    assert "websockets" not in loaded  # the emulator is served without uvicorn's WebSocket protocol
    # made on first use, still an httpx.HTTPStatusError (the subprocess fails otherwise)
    _loaded_after("import httpx, mockserver.testing as t\nassert issubclass(t.ControlError, httpx.HTTPStatusError)")


HTTPX_PROBE = """
import sys
{before}
from mockserver import _httpx
_httpx.load()
import httpx
cli_loaded = "httpx._main" in sys.modules
with httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))) as client:
    assert client.get("http://x/").status_code == 204
import httpx._main  # held back, not broken: an explicit import still works
assert callable(httpx._main.main)
print(json.dumps(cli_loaded))
"""


def _cli_loaded(before: str = "") -> bool:
    probe = "import json" + HTTPX_PROBE.format(before=before)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return bool(json.loads(done.stdout.splitlines()[-1]))


def test_the_fixtures_httpx_comes_without_its_command_line_client() -> None:
    pytest.importorskip("rich")  # with its CLI extras absent, httpx never imports the submodule anyway
    assert _cli_loaded() is False
    # The plain import, for comparison: what load() spares (the probe's own check would be vacuous otherwise).
    assert _cli_loaded(before="import httpx") is True


# Registered when the test module is imported, before the fixture starts the emulator, so it runs after the
# plugin's exit handler (atexit runs last-registered first): it sees what the shutdown's collections will see.
FROZEN_AT_EXIT = """
import atexit, gc, sys

atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, file=sys.stderr))


def test_uses_the_emulator(aurous_mock):
    assert "credits" in aurous_mock.balance
    assert gc.get_freeze_count() == 0  # nothing frozen while the session runs
"""


@pytest.mark.parametrize(("ini", "frozen"), [("", True), ("aurous_mock_fast_exit = false", False)])
def test_a_run_that_started_the_emulator_exits_without_collecting_its_heap(
    pytester: pytest.Pytester, ini: str, frozen: bool
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_exit=FROZEN_AT_EXIT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-s")
    result.assert_outcomes(passed=1)
    assert f"frozen at exit: {frozen}" in result.stderr.str()


def test_a_run_without_the_emulator_exits_as_usual(pytester: pytest.Pytester) -> None:
    plain = FROZEN_AT_EXIT.split("def test_uses_the_emulator")[0] + "def test_plain():\n    assert True\n"
    pytester.makepyfile(test_exit=plain)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-s")
    result.assert_outcomes(passed=1)
    assert "frozen at exit: False" in result.stderr.str()


# What the fixture imports of ours after the plugins are loaded, and which of it pytest rewrote: nothing.
REWRITE_PROBE = """
import sys

from _pytest.assertion.rewrite import AssertionRewritingHook

LOADED = set(sys.modules)


def test_uses_the_emulator(aurous_mock):
    ours = [name for name in sys.modules if name not in LOADED and name.split(".")[0] in ("mockserver", "contracts")]
    assert "mockserver.app" in ours and "mockserver.testing" in ours
    rewritten = [name for name in ours if isinstance(sys.modules[name].__loader__, AssertionRewritingHook)]
    assert rewritten == []


def test_user_asserts_are_still_rewritten():
    assert isinstance(sys.modules[__name__].__loader__, AssertionRewritingHook)
"""


def test_pytest_does_not_rewrite_the_emulator_the_fixture_imports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=REWRITE_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("disabled", ["aurous_mock", "aurous_contracts"])
def test_either_plugin_alone_exempts_the_emulator(pytester: pytest.Pytester, disabled: str) -> None:
    pytester.makepyfile(
        test_user="""
import sys
from _pytest.assertion.rewrite import AssertionRewritingHook

def test_imported_by_the_test():
    import mockserver.core.requests
    assert not isinstance(mockserver.core.requests.__loader__, AssertionRewritingHook)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", f"no:{disabled}", "-q")
    result.assert_outcomes(passed=1)


def test_the_exemption_without_pytests_rewrite_internals_only_loses_the_optimisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[str] = []
    monkeypatch.setattr(pytest, "register_assert_rewrite", registered.append)  # not this session's hook
    plain: Any = SimpleNamespace(rewrite_hook=SimpleNamespace())  # --assert=plain, or a pytest that renamed them
    assert exempt_from_assert_rewrite(plain) is False
    assert registered == []
    hook = SimpleNamespace(
        _must_rewrite={"mockserver", "contracts", "mockserver.core", "mockservers", "xdist"},
        _marked_for_rewrite_cache={"mockserver.app": True, "xdist.plugin": True},
    )
    manager: Any = SimpleNamespace(rewrite_hook=hook)
    assert exempt_from_assert_rewrite(manager) is True
    assert hook._must_rewrite == {"mockservers", "xdist"}
    assert hook._marked_for_rewrite_cache == {}
    assert registered == ["contracts.suite_tests"]


def test_the_kits_suite_tests_keep_their_rewritten_asserts(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import sys
from _pytest.assertion.rewrite import AssertionRewritingHook

def pytest_collection_finish(session):
    assert isinstance(sys.modules["contracts.suite_tests"].__loader__, AssertionRewritingHook)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--pyargs", "contracts.suite_tests")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()  # every test skipped: no --aurous-target


@pytest.mark.e2e
def test_fresh_without_httpx_still_raises_httpx_errors() -> None:
    settings = Settings(clock="virtual", host="127.0.0.1", port=0, control_token="s3cret")
    with EmulatorThread(settings) as server:
        with pytest.raises(ControlError) as caught:
            AurousMock.fresh(server.base_url, "wrong")
        refused = caught.value
        assert (refused.status, refused.code) == (401, "invalid_api_key")
        assert refused.request_id is not None
        assert refused.response.status_code == 401
        assert refused.request.url == f"{server.base_url}/_mock/clock"
        mock = AurousMock.fresh(server.base_url, "s3cret", seed=7, name="a test")
        assert mock.journal.count() == 0  # reset and cleared through the standard library
        mock.close()
    with pytest.raises(httpx.ConnectError):  # no emulator there: httpx's error, as before
        AurousMock.fresh(server.base_url)


def test_aurous_mock_makes_its_client_on_first_use_without_tls_for_http() -> None:
    mock = AurousMock("http://127.0.0.1:9", "al_live_" + "0" * 64)
    assert mock._client is None
    client = mock.client
    assert client is mock.client  # one client, made once
    assert client.headers["X-Api-Key"] == mock.api_key
    assert str(client.base_url) == "http://127.0.0.1:9"
    mock.close()


@pytest.mark.e2e
def test_emulator_thread_stopped_without_waiting_removes_its_media_files_at_once() -> None:
    server = EmulatorThread(Settings(clock="virtual", host="127.0.0.1", port=0)).start()
    media = server.app.state.emulator.media
    media.image(width=8, height=8, seed=1, prompt="x")
    assert media.directory.is_dir()
    server.stop(wait=False)
    assert not media.directory.exists()
    server.thread.join(timeout=10)  # it still shuts down on its own
    assert not server.thread.is_alive()
