"""The OpenAPI document states what the server enforces. Schemathesis runs in process
against the app with all its phases (examples, coverage, fuzzing, stateful) and all its
checks, on positive and negative data, and finds nothing: no 5xx, no undocumented
status, no response outside its schema, no valid request refused, no invalid request
accepted."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from importlib import resources

import hypothesis.strategies as st
import pytest
import schemathesis
from conftest import TEST_PASSWORD, actor, runtime_on
from schemathesis.engine import Status, events, from_schema

from sandu.api.app import create_app
from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.origination import actions as orig
from sandu.security import actions as security
from sandu.security.authz import TABLE
from sandu.simulate.stories import STORY_ROWS

MAX_EXAMPLES = 12  # anonymous and applicant: the routes with the most inputs
MAX_EXAMPLES_OTHER_ROLES = 3
S2 = STORY_ROWS[1]


def _uscc(n: int) -> str:
    body = f"{n:08d}"
    return make_uscc("9", "1", "330302", body + org_code_check_char(body))


@pytest.fixture(autouse=True, scope="module")
def _each_pattern_compiled_once():
    """Hypothesis turns a pattern into a strategy afresh each time schemathesis asks for one (its
    alphabet is a new object each time, so hypothesis's own cache misses), and the free-text
    pattern's refused classes list ~137,000 code points, which takes seconds per build — most of
    this module's time. The same (pattern, flags, fullmatch, alphabet) gives the same strategy:
    build it once per module. Only the speed changes; every value still comes from hypothesis."""
    from hypothesis.strategies._internal import regex

    original = getattr(regex, "regex_strategy", None)
    if original is None:  # a hypothesis without this internal: run slower, unchanged
        yield
        return
    built: dict[tuple, st.SearchStrategy] = {}

    def once(pattern, fullmatch, *, alphabet):
        key = (getattr(pattern, "pattern", pattern), getattr(pattern, "flags", 0), fullmatch, repr(alphabet))
        if key not in built:
            built[key] = original(pattern, fullmatch, alphabet=alphabet)
        return built[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(regex, "regex_strategy", once)
        yield


# A changed policy bundle for the what-if: the shipped one, or it with another price or limit (each a valid bundle).
_BUNDLE_TEXT = resources.files("sandu.policy.bundles").joinpath("default.toml").read_text(encoding="utf-8")
schemathesis.openapi.format("policy-bundle", st.sampled_from([
    _BUNDLE_TEXT, _BUNDLE_TEXT.replace("min_annual_tax_fen = 3_000_000", "min_annual_tax_fen = 5_000_000"),
    _BUNDLE_TEXT.replace("floor_bp_vs_lpr = -30", "floor_bp_vs_lpr = -10"),
]))

# Valid identifiers for the formats the document declares: the story enterprises (known
# to the registry) and others that nobody has registered.
schemathesis.openapi.format("uscc", st.one_of(st.sampled_from([r["uscc"] for r in STORY_ROWS]), st.integers(1, 99_999_999).map(_uscc)))
schemathesis.openapi.format(
    "resident-id",
    st.one_of(
        st.sampled_from([r["legal_rep_id"] for r in STORY_ROWS]),
        st.builds(lambda days, seq: make_resident_id("330302", date(1960, 1, 1) + timedelta(days=days), f"{seq:03d}"),
                  st.integers(0, 15_000), st.integers(0, 999)),
    ),
)


def failures_of(app, headers: dict[str, str] | None = None, max_examples: int = MAX_EXAMPLES, public_only: bool = False,
                phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful")) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    if public_only:
        schema = schema.include(operation_id=[name for name, rule in TABLE.items() if rule.public])
    schema.config.generation.update(max_examples=max_examples, deterministic=True)
    schema.config.phases.update(phases=list(phases))
    if headers:
        schema.config.update(headers=headers)
    found: set[str] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status in (Status.FAILURE, Status.ERROR):
            rec = event.recorder
            for case_id, checks in rec.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        f = check.failure_info.failure
                        seen = rec.interactions.get(case_id)
                        answer = "" if seen is None or seen.response is None else f" → {seen.response.status_code} {seen.response.content[:300]!r}"
                        case = rec.cases[case_id].value
                        asked = f"{case.method} {case.formatted_path} body={str(case.body)[:300]} query={case.query}"
                        found.add(f"{event.label}: {check.name}: {f.title} — {str(f.message)[:200]}\n    {asked}{answer}")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            found.add(f"error: {getattr(event, 'label', '')}: {getattr(event, 'value', getattr(event, 'exception', ''))!r}"[:400])
    return sorted(found)


# One user of each role; the applicant is S2's legal representative with S2 registered.
ROLES = {"applicant": "rep-s2", "officer": "officer-yongjia", "approver": "approver-yongjia", "risk": "risk", "operations": "ops",
         "admin": "admin", "auditor": "auditor"}


def test_without_a_token_no_route_reads_its_input(tmp_path, sqlite_template):
    """Anonymous requests to the routes that need a token: all of them answer 401 whatever they carry."""
    path = tmp_path / "sandu.db"
    shutil.copyfile(sqlite_template, path)
    rt = runtime_on(f"sqlite:///{path}")
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(rt)).include(
            operation_id=[name for name, rule in TABLE.items() if not rule.public])
        schema.config.generation.update(max_examples=MAX_EXAMPLES_OTHER_ROLES, deterministic=True)
        schema.config.phases.update(phases=["fuzzing"])
        statuses = set()
        for event in from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                statuses |= {i.response.status_code for i in event.recorder.interactions.values() if i.response is not None}
        assert statuses == {401}
    finally:
        rt.engine.dispose()


@pytest.mark.parametrize("role", [None, *ROLES])
def test_the_api_keeps_its_document(tmp_path, sqlite_template, role):
    path = tmp_path / "sandu.db"
    shutil.copyfile(sqlite_template, path)
    rt = runtime_on(f"sqlite:///{path}")
    try:
        headers = None
        if role is not None:
            if role == "applicant":
                orig.register(rt, actor(rt, "rep-s2"), uscc=S2["uscc"], name=S2["name"])
            token = security.login(rt, username=ROLES[role], password=TEST_PASSWORD).access_token
            headers = {"Authorization": f"Bearer {token}"}
        if role is None:  # anonymous: the public routes, fully (the rest answer 401 before reading a body)
            found = failures_of(create_app(rt), public_only=True)
        elif role == "applicant":  # the role with the most inputs, every phase
            found = failures_of(create_app(rt), headers)
        else:  # staff: their own routes and everyone else's refusals, a few examples each
            found = failures_of(create_app(rt), headers, MAX_EXAMPLES_OTHER_ROLES, phases=("examples", "fuzzing"))
    finally:
        rt.engine.dispose()
    assert found == [], "\n".join(found)
