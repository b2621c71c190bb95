"""The shape of the code (ARCHITECTURE.md) as tests: interfaces are thin and import no
store; engines are pure; web and API do not import each other; no handler blocks the
event loop."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import pytest

import sandu
from sandu.api.routing import run_action

SRC = Path(sandu.__file__).parent
INTERFACES = ("api", "web", "cli")
ENGINES = ("domain", "ledger", "policy", "scoring", "sources")
ENGINE_MAY_NOT = ("sqlalchemy", "fastapi", "starlette", "httpx", "uvicorn", "sandu.store", "sandu.runtime", "sandu.settings",
                  "sandu.origination", "sandu.servicing", "sandu.demo", "sandu.api", "sandu.web", "sandu.cli")


def imports_of(package: str) -> dict[str, set[str]]:
    """module file → every module it imports (at any depth of the file)."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = names
    return found


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{f}: {m}" for f, mods in imports_of(package).items() for m in sorted(mods) if any(m == x or m.startswith(x + ".") for x in forbidden)]


@pytest.mark.parametrize("package", INTERFACES)
def test_interfaces_import_no_store(package):
    assert _offending(package, ("sandu.store", "sqlalchemy")) == []


def test_web_and_api_do_not_import_each_other_in_a_cycle():
    assert _offending("web", ("sandu.api",)) == []


@pytest.mark.parametrize("package", ENGINES)
def test_engines_are_pure(package):
    assert _offending(package, ENGINE_MAY_NOT) == []


def _hands_off_to_a_worker_thread(endpoint) -> bool:
    """An `async def` handler whose whole body (after its docstring) is `return await run_action(...)`."""
    fn = ast.parse(textwrap.dedent(inspect.getsource(endpoint))).body[0]
    body = [st for st in fn.body if not (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str))]
    return (len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Await)
            and isinstance(body[0].value.value, ast.Call) and isinstance(body[0].value.value.func, ast.Name)
            and body[0].value.value.func.id == "run_action")


def test_no_handler_does_its_own_work_on_the_event_loop(tmp_path):
    """Database work runs on worker threads: every route handler is a plain def, or an async def that only hands its
    action to `run_action` (for the busiest routes: a worker thread, or the event loop when every wait is local)."""
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    from sandu.api.app import create_app
    from sandu.policy.bundle import load_bundle
    from sandu.runtime import Runtime
    from sandu.scoring.risk import load_model
    from sandu.store.db import make_engine

    app = create_app(Runtime(engine=make_engine(f"sqlite:///{tmp_path / 'unused.db'}"), bundle=load_bundle(), model=load_model()))

    def walk(routes):  # included routers are kept as branches: walk into them
        for r in routes:
            inner = getattr(r, "original_router", None)
            yield from walk(inner.routes) if inner is not None else [r]

    ours = [r for r in walk(app.routes) if isinstance(r, (APIRoute, Route)) and r.endpoint.__module__.startswith("sandu.")]
    documented = sum(len(ops) for ops in app.openapi()["paths"].values())
    assert len([r for r in ours if r.endpoint.__module__.startswith("sandu.api.routers.")]) == documented  # the walk saw every route
    assert [r.path for r in ours if inspect.iscoroutinefunction(r.endpoint) and not _hands_off_to_a_worker_thread(r.endpoint)] == []
    assert {r.name for r in ours if inspect.iscoroutinefunction(r.endpoint)} == {"enterprises.measure", "lines.draw"}


def test_the_hand_off_check_refuses_an_async_handler_doing_anything_else():
    async def reads_first(rt):
        """A docstring is allowed."""
        rt.check_store()
        return await run_action(print)

    async def hands_off(rt):
        """A docstring is allowed."""
        return await run_action(print, rt)

    assert not _hands_off_to_a_worker_thread(reads_first) and _hands_off_to_a_worker_thread(hands_off)
