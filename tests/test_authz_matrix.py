"""Route × role, generated from the app's own route list: every documented operation must
appear in the expected matrix below (a new route without a rule fails here), every role
gets exactly the answer the matrix says, another tenant's objects answer 404, and no
non-public route answers anything but 401 without a token — before its body is read."""

from __future__ import annotations

from fractions import Fraction
from importlib import resources

import httpx
import pytest
from conftest import TEST_PASSWORD, login, serve
from test_alerts import collapse_revenue

from sandu.api.app import create_app
from sandu.domain.enums import Role
from sandu.security.authz import TABLE
from sandu.simulate.stories import STORY_ROWS

API = "/api/v1"
S2, S3, S4 = STORY_ROWS[1], STORY_ROWS[2], STORY_ROWS[3]
ALL = frozenset(Role)
A, O, P, K, X, D, U = Role.APPLICANT, Role.OFFICER, Role.APPROVER, Role.RISK, Role.OPERATIONS, Role.ADMIN, Role.AUDITOR
READERS = frozenset({A, O, P, K, D, U})
PUBLIC = None

# Written out by hand, independently of sandu.security.authz: who may call each operation.
DEFAULT_BUNDLE_TEXT = resources.files("sandu.policy.bundles").joinpath("default.toml").read_text(encoding="utf-8")
EXPECTED: dict[str, frozenset[Role] | None] = {
    "auth.signup": PUBLIC, "auth.token": PUBLIC, "auth.refresh": PUBLIC, "auth.logout": PUBLIC, "auth.me": ALL,
    "users.create": frozenset({D}), "users.list": frozenset({D, U}), "users.disable": frozenset({D}),
    "enterprises.register": frozenset({A}), "enterprises.get": READERS, "enterprises.delegates.add": frozenset({A}),
    "enterprises.consents.grant": frozenset({A}), "enterprises.measure": frozenset({A, O}), "consents.revoke": frozenset({A}),
    "enterprises.consents.history": READERS, "enterprises.refresh": frozenset({O, K}),
    "enterprises.erase": frozenset({O, D}), "enterprises.erasures": READERS, "consents.scopes": ALL, "consents.get": READERS, "consents.reads": READERS,
    "decisions.get": READERS, "decisions.review": frozenset({O}), "decisions.approve": frozenset({O, P}), "decisions.accept": frozenset({A}),
    "lines.get": READERS, "lines.journal": READERS, "lines.draw": frozenset({A}), "lines.repay": frozenset({A}),
    "lines.freeze": frozenset({O, K}), "lines.unfreeze": frozenset({O, K}), "lines.reduce": frozenset({O, P, K}),
    "lines.renew": frozenset({P}), "lines.close": frozenset({O}),
    "lines.drawings": READERS, "lines.drawing": READERS, "lines.statement": READERS, "lines.prepay": frozenset({A}),
    "lines.classify": frozenset({O, K}),
    "operations.eod": frozenset({X}), "audit.list": frozenset({U}), "policy.simulate": frozenset({K, D, U}), "reports.portfolio": frozenset({O, P, K, D, U}),
    "decisions.human_review.request": frozenset({A}), "decisions.human_review.review": frozenset({O}),
    "decisions.human_review.decide": frozenset({O, P}), "applications.get": READERS, "applications.withdraw": frozenset({A}),
    "applications.decline": frozenset({O, P}),
    "referrals.list": frozenset({O, P, D}),
    "alerts.list": frozenset({O, P}), "alerts.get": frozenset({O, P}), "alerts.acknowledge": frozenset({O, P}), "alerts.propose": frozenset({O}),
    "alerts.approve": frozenset({O, P}), "alerts.reject": frozenset({O, P}), "alerts.dismiss": frozenset({O, P}),
}
# A user of each role whose reach covers S2's objects (永嘉), and one whose reach does not (S3 is in 乐清, another tenant).
OWN = {A: "rep-s2", O: "officer-yongjia", P: "approver-yongjia", K: "risk", X: "ops", D: "admin", U: "auditor"}
FOREIGN = {A: "rep-s2", O: "officer-yongjia", P: "approver-yongjia"}  # asked about S3's objects


@pytest.fixture(scope="module")
def world(tmp_path_factory, sqlite_template):
    import shutil

    from conftest import runtime_on

    path = tmp_path_factory.mktemp("matrix") / "sandu.db"
    shutil.copyfile(sqlite_template, path)
    rt = runtime_on(f"sqlite:///{path}")
    for base in serve(create_app(rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            ids = {}
            for row, key in ((S2, "own"), (S3, "foreign")):
                rep = login(c, f"rep-{row['story'].lower()}")
                assert c.post(f"{API}/enterprises", json={"uscc": row["uscc"], "name": row["name"]}, headers=rep).status_code == 201
                cid = c.post(f"{API}/enterprises/{row['uscc']}/consents", json={"scopes": ["tax", "credit_bureau", "ip", "social_insurance"], "bureau_authorization": True}, headers=rep).json()["id"]
                d = c.post(f"{API}/enterprises/{row['uscc']}/measurements", json={"consent_id": cid}, headers=rep).json()
                product = next(o["product"] for o in d["offers"] if o["approved_fen"] > 0)
                line = c.post(f"{API}/decisions/{d['id']}/offers/{product}/accept", headers=rep).json()["id"]
                ids[key] = {"uscc": row["uscc"], "consent": cid, "decision": d["id"], "product": product, "line": line,
                            "application": d["application_id"]}
            for key, who in (("own", "officer-yongjia"), ("foreign", "risk")):  # a revenue collapse raises an early-warning alert on each line
                collapse_revenue(rt, ids[key]["uscc"], Fraction(1, 2))
                [ids[key]["alert"]] = c.post(f"{API}/enterprises/{ids[key]['uscc']}/refresh", json={}, headers=login(c, who)).json()["alerts_raised"]
            victim = c.post(f"{API}/users", json={"username": "to-disable", "password": TEST_PASSWORD, "role": "risk"}, headers=login(c, "admin")).json()
            ids["victim"] = victim["id"]
            tokens = {role: login(c, name) for role, name in OWN.items()}
            yield c, ids, tokens
    rt.engine.dispose()


def request_for(name: str, ids: dict, tenant: str = "own") -> tuple[str, str, dict]:
    """(method, path, request kwargs) that exercises operation `name` on a tenant's objects."""
    o = ids[tenant]
    e, d, ln = f"{API}/enterprises/{o['uscc']}", f"{API}/decisions/{o['decision']}", f"{API}/lines/{o['line']}"
    return {
        "auth.signup": ("POST", f"{API}/auth/signup", {"json": {"username": "matrix-x", "password": TEST_PASSWORD, "resident_id": "11010519491231002X"}}),
        "auth.token": ("POST", f"{API}/auth/token", {"data": {"username": "risk", "password": TEST_PASSWORD}}),
        "auth.refresh": ("POST", f"{API}/auth/refresh", {"json": {"refresh_token": "unknown"}}),
        "auth.logout": ("POST", f"{API}/auth/logout", {"json": {"refresh_token": "unknown"}}),
        "auth.me": ("GET", f"{API}/auth/me", {}),
        "users.create": ("POST", f"{API}/users", {"json": {"username": "matrix-staff", "password": TEST_PASSWORD, "role": "auditor"}}),
        "users.list": ("GET", f"{API}/users", {}),
        "users.disable": ("POST", f"{API}/users/{ids['victim']}/disable", {}),
        "enterprises.register": ("POST", f"{API}/enterprises", {"json": {"uscc": o["uscc"], "name": "x"}}),
        "enterprises.get": ("GET", e, {}),
        "enterprises.delegates.add": ("POST", f"{e}/delegates", {"json": {"username": "rep-s5"}}),
        "enterprises.consents.grant": ("POST", f"{e}/consents", {"json": {"scopes": ["tax"]}}),
        "enterprises.measure": ("POST", f"{e}/measurements", {"json": {"consent_id": o["consent"]}}),
        "consents.revoke": ("POST", f"{API}/consents/{o['consent']}/revoke", {}),
        "enterprises.consents.history": ("GET", f"{e}/consents", {}),
        "enterprises.refresh": ("POST", f"{e}/refresh", {"json": {}}),
        "enterprises.erase": ("POST", f"{e}/erasures", {"json": {"reason": "矩阵测试"}}),
        "enterprises.erasures": ("GET", f"{e}/erasures", {}),
        "consents.scopes": ("GET", f"{API}/consents/scopes", {"params": {"lang": "en"}}),
        "consents.get": ("GET", f"{API}/consents/{o['consent']}", {}),
        "consents.reads": ("GET", f"{API}/consents/{o['consent']}/reads", {}),
        "decisions.get": ("GET", d, {}),
        "decisions.review": ("POST", f"{d}/offers/{o['product']}/review", {"json": {"opinion": "同意"}}),
        "decisions.approve": ("POST", f"{d}/offers/{o['product']}/approve", {}),
        "decisions.accept": ("POST", f"{d}/offers/{o['product']}/accept", {}),
        "lines.get": ("GET", ln, {}),
        "lines.journal": ("GET", f"{ln}/journal", {}),
        "lines.draw": ("POST", f"{ln}/draws", {"json": {"amount_fen": 100, "idempotency_key": "matrix"}}),
        "lines.repay": ("POST", f"{ln}/repayments", {"json": {"amount_fen": 1, "idempotency_key": "matrix-r"}}),
        "lines.freeze": ("POST", f"{ln}/freeze", {}),
        "lines.unfreeze": ("POST", f"{ln}/unfreeze", {}),
        "lines.reduce": ("POST", f"{ln}/reduce", {"json": {"limit_fen": 10**12}}),
        "lines.renew": ("POST", f"{ln}/renew", {}),
        "lines.close": ("POST", f"{ln}/close", {}),
        "lines.drawings": ("GET", f"{ln}/drawings", {}),
        "lines.drawing": ("GET", f"{ln}/drawings/1", {}),
        "lines.statement": ("GET", f"{ln}/statement", {"params": {"from": "2026-11-01", "to": "2026-11-29"}}),
        "lines.prepay": ("POST", f"{ln}/drawings/1/prepayments", {"json": {"principal_fen": 1, "idempotency_key": "matrix-p"}}),
        "lines.classify": ("POST", f"{ln}/drawings/1/classification", {"json": {"risk_class": "loss", "note": "矩阵"}}),
        "operations.eod": ("POST", f"{API}/eod", {"json": {"business_date": "2026-11-28"}}),
        "audit.list": ("GET", f"{API}/audit", {}),
        "reports.portfolio": ("GET", f"{API}/reports/portfolio", {}),
        "policy.simulate": ("POST", f"{API}/policy/simulations", {"json": {"policy": DEFAULT_BUNDLE_TEXT, "since": "2026-01-01"}}),
        "decisions.human_review.request": ("POST", f"{d}/human-review", {"json": {"reason": "请人工复核"}}),
        "decisions.human_review.review": ("POST", f"{d}/human-review/review", {"json": {"outcome": "upheld", "opinion": "维持"}}),
        "decisions.human_review.decide": ("POST", f"{d}/human-review/decide", {}),
        "applications.get": ("GET", f"{API}/applications/{o['application']}", {}),
        "applications.withdraw": ("POST", f"{API}/applications/{o['application']}/withdraw", {"json": {"reason": "不再需要"}}),
        "applications.decline": ("POST", f"{API}/applications/{o['application']}/decline", {"json": {"reason": "经营风险较高"}}),
        "referrals.list": ("GET", f"{API}/referrals", {}),
        "alerts.list": ("GET", f"{API}/alerts", {}),
        "alerts.get": ("GET", f"{API}/alerts/{o['alert']}", {}),
        "alerts.acknowledge": ("POST", f"{API}/alerts/{o['alert']}/acknowledge", {}),
        "alerts.propose": ("POST", f"{API}/alerts/{o['alert']}/propose", {"json": {}}),
        "alerts.approve": ("POST", f"{API}/alerts/{o['alert']}/approve", {}),
        "alerts.reject": ("POST", f"{API}/alerts/{o['alert']}/reject", {"json": {"note": "矩阵"}}),
        "alerts.dismiss": ("POST", f"{API}/alerts/{o['alert']}/dismiss", {"json": {"note": "矩阵"}}),
    }[name]


def operations(client) -> list[str]:
    spec = client.get("/openapi.json").json()
    return sorted(op["operationId"] for ops in spec["paths"].values() for op in ops.values())


def test_every_documented_operation_has_an_expectation_and_a_rule(world):
    client, _, _ = world
    ops = operations(client)
    assert set(ops) == set(EXPECTED), f"new or missing operations: {sorted(set(ops) ^ set(EXPECTED))}"
    assert set(ops) <= set(TABLE)
    for name in ops:
        rule = TABLE[name]
        assert (None if rule.public else frozenset(rule.roles)) == EXPECTED[name], name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_role_gets_what_the_matrix_says(world, name):
    client, ids, tokens = world
    method, path, kw = request_for(name, ids)
    for role in Role:
        r = client.request(method, path, headers=tokens[role], **kw)
        err = r.json().get("error") if r.headers.get("content-type", "").startswith("application/json") and r.status_code >= 400 else None
        denied = r.status_code == 403 and err is not None and err.get("rule") == f"authz.{name}"
        allowed = EXPECTED[name] is None or role in EXPECTED[name]
        if EXPECTED[name] is not None:  # a valid token is never refused (public routes judge their own credentials)
            assert r.status_code != 401, (name, role, r.text)
        assert denied == (not allowed), f"{name} as {role}: {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("name", sorted(n for n, rule in TABLE.items() if rule.object is not None and n in EXPECTED))
def test_another_tenants_objects_answer_404(world, name):
    client, ids, tokens = world
    method, path, kw = request_for(name, ids, tenant="foreign")
    for role, _username in FOREIGN.items():
        if role not in EXPECTED[name]:
            continue
        r = client.request(method, path, headers=tokens[role], **kw)
        assert r.status_code == 404, f"{name} as {role} on another tenant's object: {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n] is not None))
def test_without_a_token_every_route_answers_401_before_reading_the_body(world, name):
    client, ids, _ = world
    method, path, _kw = request_for(name, ids)
    r = client.request(method, path, content=b"{this is not json", headers={"content-type": "application/json"})
    assert r.status_code == 401, (name, r.status_code, r.text[:300])
    assert r.json()["error"]["code"] == "not_authenticated"
