"""The shape of the code (ARCHITECTURE.md) as tests: interfaces are thin and import no
store; engines are pure; web and API do not import each other; no handler blocks the
event loop."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import sandu

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


def test_no_handler_runs_on_the_event_loop(tmp_path):
    """Database work runs on worker threads: every route handler is a plain def."""
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
    assert [r.path for r in ours if inspect.iscoroutinefunction(r.endpoint)] == []
