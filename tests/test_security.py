"""Identities: tokens that must be refused, login throttling, refresh rotation, disabled
users, rate limits, personal data, and the CLI that manages users."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cli_support import sandu
from conftest import FIXED_NOW, TEST_PASSWORD, TEST_SECRET, TEST_SETTINGS, login, runtime_on, serve
from sqlalchemy import func, select, text, update

from sandu.api.app import create_app
from sandu.domain.enums import Role
from sandu.domain.errors import Busy, InvalidInput, NotAuthenticated
from sandu.security import actions as security
from sandu.security import passwords, tokens
from sandu.security import service as svc
from sandu.security.passwords import MIN_PASSWORD_LENGTH, check_new_password
from sandu.simulate.stories import STORY_ROWS
from sandu.store import models as m

API = "/api/v1"
S2 = STORY_ROWS[1]
JWT_KEY = TEST_SETTINGS.derived_key("jwt")


@pytest.fixture
def app_rt(sqlite_url):
    rt = runtime_on(sqlite_url, TEST_SETTINGS.model_copy(update={"rate_measure_per_minute": 3, "login_max_failures": 5}))
    yield rt
    rt.engine.dispose()


@pytest.fixture
def client(app_rt):
    for base in serve(create_app(app_rt)):
        with httpx.Client(base_url=base, timeout=30) as c:
            yield c


def _user_id(rt, username: str) -> int:
    with rt.uow.read() as s:
        return s.scalar(select(m.User.id).where(m.User.username == username))


def _forge(claims_over: dict, key: bytes = JWT_KEY, algorithm: str = "HS256", drop: tuple[str, ...] = ()) -> str:
    now = int(FIXED_NOW.timestamp())
    claims = {"sub": "5", "role": "admin", "iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "iat": now, "nbf": now, "exp": now + 600,
              "jti": "x", "auth_time": now, **claims_over}
    for k in drop:
        claims.pop(k)
    return jwt.encode(claims, key, algorithm=algorithm)


def _alg_none(claims_over: dict) -> str:
    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(FIXED_NOW.timestamp())
    body = {"sub": "1", "role": "admin", "iss": tokens.ISSUER, "aud": tokens.AUDIENCE, "iat": now, "nbf": now, "exp": now + 600, "jti": "x",
            "auth_time": now, **claims_over}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(body)}."


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 forgery below
def test_tokens_that_must_be_refused_get_401_and_change_nothing(client, app_rt):
    admin_id = _user_id(app_rt, "admin")
    now = int(FIXED_NOW.timestamp())
    bad = {
        "expired": _forge({"sub": str(admin_id), "exp": now - 1, "iat": now - 900, "nbf": now - 900}),
        "not yet valid": _forge({"sub": str(admin_id), "nbf": now + 60}),
        "alg none": _alg_none({"sub": str(admin_id)}),
        "wrong key": _forge({"sub": str(admin_id)}, key=b"another key that is long enough for HS256 use"),
        "HS512": _forge({"sub": str(admin_id)}, algorithm="HS512"),
        "wrong audience": _forge({"sub": str(admin_id), "aud": "another-api"}),
        "wrong issuer": _forge({"sub": str(admin_id), "iss": "someone"}),
        "no auth_time": _forge({"sub": str(admin_id)}, drop=("auth_time",)),
        "role changed": _forge({"sub": str(admin_id), "role": "auditor"}),
        "unknown user": _forge({"sub": "999999"}),
        "garbage": "not-a-token",
        "empty": None,
    }
    for label, token in bad.items():
        r = client.get(f"{API}/users", headers={"Authorization": "Bearer" if token is None else f"Bearer {token}"})
        assert r.status_code == 401, f"{label}: {r.status_code} {r.text}"
        assert r.json()["error"]["code"] == "not_authenticated" and "WWW-Authenticate" in r.headers, label
    # the same claims, properly signed, are accepted: the refusals above are about the token, not the user
    assert client.get(f"{API}/users", headers={"Authorization": f"Bearer {_forge({'sub': str(admin_id)})}"}).status_code == 200
    # without a token every write route answers 401, before its body is even parsed
    for path in (f"{API}/enterprises", f"{API}/lines/1/draws", f"{API}/eod", f"{API}/users"):
        r = client.post(path, content=b"{not json")
        assert r.status_code == 401, (path, r.text)


def test_a_token_verified_once_is_still_checked_for_its_times_and_its_key_on_every_use():
    """A token's signature and claims are verified once per process (`tokens._verified`), its times on every use: the
    same token, accepted before, is refused once expired and before it is valid, and under another key whatever it
    verified to under the first; each refusal leaves nothing verified."""
    t0 = FIXED_NOW
    token, expires = tokens.issue_access(JWT_KEY, user_id=7, role="admin", now=t0, auth_time=t0, minutes=10)
    claims = tokens.decode_access(JWT_KEY, token, t0)
    assert (claims.user_id, claims.role, claims.expires_at, claims.auth_time) == (7, "admin", expires, t0.replace(microsecond=0))
    hits = tokens._verified.cache_info().hits
    assert tokens.decode_access(JWT_KEY, token, expires - timedelta(seconds=1)) == claims  # the last second it is valid
    assert tokens._verified.cache_info().hits == hits + 1  # verified once
    for at, why in ((expires, "token has expired"), (t0 - timedelta(seconds=1), "token is not valid yet")):
        with pytest.raises(tokens.TokenInvalid, match=why):
            tokens.decode_access(JWT_KEY, token, at)
    other = b"another key that is long enough for HS256 use"
    misses = tokens._verified.cache_info().misses
    for _ in range(2):  # a refusal is not kept: the second try verifies again, and is refused again
        with pytest.raises(tokens.TokenInvalid, match="signature does not verify"):
            tokens.decode_access(other, token, t0)
    assert tokens._verified.cache_info().misses == misses + 2
    assert tokens.decode_access(JWT_KEY, token, t0) == claims


def test_a_disabled_user_is_refused_at_once_and_their_refresh_tokens_die(client, app_rt):
    r = client.post(f"{API}/auth/token", data={"username": "risk", "password": TEST_PASSWORD}).json()
    auth = {"Authorization": f"Bearer {r['access_token']}"}
    assert client.get(f"{API}/auth/me", headers=auth).status_code == 200
    admin = login(client, "admin")
    assert client.post(f"{API}/users/{_user_id(app_rt, 'risk')}/disable", headers=admin).status_code == 200
    assert client.get(f"{API}/auth/me", headers=auth).status_code == 401  # the live access token stops working
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": r["refresh_token"]}).status_code == 401
    assert client.post(f"{API}/auth/token", data={"username": "risk", "password": TEST_PASSWORD}).status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_ends_every_session(client):
    first = client.post(f"{API}/auth/token", data={"username": "rep-s2", "password": TEST_PASSWORD}).json()
    second = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    assert client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"}).json()["username"] == "rep-s2"
    # the first refresh token was used up: presenting it again is theft or a leak — every session ends
    reuse = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and "every session" in reuse.json()["error"]["message"]
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}).status_code == 401
    # logging out revokes a refresh token
    third = client.post(f"{API}/auth/token", data={"username": "rep-s2", "password": TEST_PASSWORD}).json()
    assert client.post(f"{API}/auth/logout", json={"refresh_token": third["refresh_token"]}).status_code == 204
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401


def test_five_failed_logins_lock_the_account_for_a_while(client, app_rt):
    for k in range(5):
        r = client.post(f"{API}/auth/token", data={"username": "auditor", "password": f"wrong password {k}"})
        assert r.status_code == 401 and r.json()["error"]["message"] == "wrong username or password"
    locked = client.post(f"{API}/auth/token", data={"username": "auditor", "password": TEST_PASSWORD})
    assert locked.status_code == 401 and "locked until" in locked.json()["error"]["message"]
    unknown = client.post(f"{API}/auth/token", data={"username": "nobody-here", "password": TEST_PASSWORD})
    assert unknown.status_code == 401 and unknown.json()["error"]["message"] == "wrong username or password"
    app_rt.clock.value = FIXED_NOW + timedelta(minutes=TEST_SETTINGS.login_lock_minutes, seconds=1)
    assert client.post(f"{API}/auth/token", data={"username": "auditor", "password": TEST_PASSWORD}).status_code == 200
    # four failures, then a success: the count starts again
    for k in range(4):
        client.post(f"{API}/auth/token", data={"username": "auditor", "password": f"wrong {k}"})
    assert client.post(f"{API}/auth/token", data={"username": "auditor", "password": TEST_PASSWORD}).status_code == 200
    with app_rt.uow.read() as s:
        assert s.scalar(select(m.User.failed_logins).where(m.User.username == "auditor")) == 0


@pytest.fixture
def short_wait_rt(sqlite_url):
    rt = runtime_on(sqlite_url, TEST_SETTINGS.model_copy(update={"write_wait_s": 1.0}))
    yield rt
    rt.engine.dispose()


def _writes_meanwhile(monkeypatch, rt, name: str) -> list[str]:
    """While `passwords.<name>` (argon2: ~100 ms of CPU by design) runs, another thread writes to the store, waiting at
    most `write_wait_s` for the writer: what each such write came to ("written", or the error)."""
    outcomes: list[str] = []
    real = getattr(passwords, name)

    def meanwhile() -> None:
        try:
            with rt.uow.write() as s:
                s.execute(text("SELECT 1"))
            outcomes.append("written")
        except Busy as exc:
            outcomes.append(f"busy: {exc}")

    def wrapped(*args, **kwargs):
        other = threading.Thread(target=meanwhile)
        other.start()
        other.join(timeout=30)
        return real(*args, **kwargs)

    monkeypatch.setattr(passwords, name, wrapped)
    return outcomes


def test_a_login_checks_the_password_while_the_store_takes_other_writes(monkeypatch, short_wait_rt):
    """The password's hash is checked before the login's write transaction: on SQLite a write holds the writer of
    every process, and a login holding it for its argon2 check would stall every measurement and draw behind it."""
    rt = short_wait_rt
    outcomes = _writes_meanwhile(monkeypatch, rt, "verify_password")
    assert security.login(rt, username="auditor", password=TEST_PASSWORD).access_token
    with pytest.raises(NotAuthenticated, match="wrong username or password"):
        security.login(rt, username="auditor", password="not the password")
    with pytest.raises(NotAuthenticated, match="wrong username or password"):
        security.login(rt, username="nobody-here", password=TEST_PASSWORD)  # a decoy hash is checked: the same cost
    assert outcomes == ["written"] * 3
    with rt.uow.read() as s:
        assert s.scalar(select(m.User.failed_logins).where(m.User.username == "auditor")) == 1  # the failure still counts


def test_a_new_password_is_hashed_while_the_store_takes_other_writes(monkeypatch, short_wait_rt):
    rt = short_wait_rt
    outcomes = _writes_meanwhile(monkeypatch, rt, "hash_password")
    security.signup(rt, username="new-applicant", password=TEST_PASSWORD, resident_id="11010519491231002X", client="127.0.0.1")
    security.create_user(rt, None, username="new-risk", password=TEST_PASSWORD, role=Role.RISK)
    assert outcomes == ["written"] * 2
    assert security.login(rt, username="new-applicant", password=TEST_PASSWORD).access_token
    assert security.login(rt, username="new-risk", password=TEST_PASSWORD).access_token


def test_a_bad_username_is_named_before_a_bad_password_and_nothing_is_hashed(monkeypatch, short_wait_rt):
    hashed: list[str] = []
    monkeypatch.setattr(passwords, "hash_password", lambda ph, password: hashed.append(password) or "")
    with pytest.raises(InvalidInput) as bad:
        security.create_user(short_wait_rt, None, username="X", password="short", role=Role.RISK)
    assert bad.value.field == "username"
    with pytest.raises(InvalidInput) as bad:
        security.create_user(short_wait_rt, None, username="fine-name", password="short", role=Role.RISK)
    assert bad.value.field == "password" and hashed == []


def test_a_password_checked_against_a_hash_that_changed_before_the_write_is_checked_again(app_rt):
    """`authenticate` takes the check made before its transaction only if the hash it reads under lock is the one
    checked; a hash changed meanwhile (or an account unlocked meanwhile) is checked again, under the lock."""
    rt, now = app_rt, FIXED_NOW
    other = passwords.hash_password(passwords.hasher(1, 8), "another good password")

    def attempt(password: str, checked: svc.PasswordCheck) -> str:
        with rt.uow.write() as s:
            try:
                return svc.authenticate(s, rt.settings, username="auditor", password=password, now=now, checked=checked).username
            except NotAuthenticated as exc:
                return str(exc)

    def checked_now(password: str) -> svc.PasswordCheck:
        with rt.uow.read_rows() as conn:
            return svc.check_password(rt.settings, svc.read_password(conn, username="auditor", password=password, now=now), password)

    def set_hash(value: str) -> None:
        with rt.uow.write() as s:
            s.execute(update(m.User).where(m.User.username == "auditor").values(password_hash=value))

    with rt.uow.read() as s:
        first = s.scalar(select(m.User.password_hash).where(m.User.username == "auditor"))
    right = checked_now(TEST_PASSWORD)
    assert right.ok is True and not right.locked and right.stored_hash == first
    set_hash(other)
    assert attempt(TEST_PASSWORD, right) == "wrong username or password"  # right for the old hash: checked again, wrong now
    set_hash(first)
    wrong = checked_now("another good password")
    assert wrong.ok is False
    set_hash(other)
    assert attempt("another good password", wrong) == "auditor"  # wrong for the old hash: checked again, right now
    # locked when read (not checked), unlocked before the write: checked under the lock
    with rt.uow.write() as s:
        s.execute(update(m.User).where(m.User.username == "auditor").values(locked_until=now + timedelta(minutes=5)))
    with rt.uow.read_rows() as conn:
        locked = svc.check_password(rt.settings, svc.read_password(conn, username="auditor", password="another good password", now=now),
                                    "another good password")
    assert locked.locked and locked.ok is None
    with rt.uow.write() as s:
        s.execute(update(m.User).where(m.User.username == "auditor").values(locked_until=None))
    assert attempt("another good password", locked) == "auditor"


def test_signing_and_drawing_need_a_fresh_password(client, app_rt):
    rep = login(client, "rep-s2")
    client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": S2["name"]}, headers=rep)
    cid = client.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "credit_bureau"], "bureau_authorization": True}, headers=rep).json()["id"]
    did = client.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=rep).json()["id"]
    refresh = client.post(f"{API}/auth/token", data={"username": "rep-s2", "password": TEST_PASSWORD}).json()["refresh_token"]
    app_rt.clock.value = FIXED_NOW + timedelta(minutes=TEST_SETTINGS.reauth_minutes + 1)
    renewed = client.post(f"{API}/auth/refresh", json={"refresh_token": refresh}).json()  # a valid session, but an old password
    stale = {"Authorization": f"Bearer {renewed['access_token']}"}
    assert client.get(f"{API}/decisions/{did}", headers=stale).status_code == 200
    r = client.post(f"{API}/decisions/{did}/offers/jingying_kuaidai/accept", headers=stale)
    assert r.status_code == 401 and r.json()["error"]["code"] == "reauthentication_required"
    fresh = login(client, "rep-s2")
    assert client.post(f"{API}/decisions/{did}/offers/jingying_kuaidai/accept", headers=fresh).status_code == 201


def test_measurements_are_rate_limited_per_identity(client, app_rt):
    rep = login(client, "rep-s2")
    client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": S2["name"]}, headers=rep)
    cid = client.post(f"{API}/enterprises/{S2['uscc']}/consents", json={"scopes": ["tax", "credit_bureau"], "bureau_authorization": True}, headers=rep).json()["id"]
    codes = [client.post(f"{API}/enterprises/{S2['uscc']}/measurements", json={"consent_id": cid}, headers=rep) for _ in range(4)]
    assert [r.status_code for r in codes] == [201, 201, 201, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    with app_rt.uow.read() as s:
        assert s.scalar(select(func.count()).select_from(m.Decision)) == 3  # the refused one changed nothing


def test_no_full_resident_id_in_any_response(client, app_rt):
    rep = login(client, "rep-s2")
    texts = [client.post(f"{API}/enterprises", json={"uscc": S2["uscc"], "name": S2["name"]}, headers=rep).text,
             client.get(f"{API}/auth/me", headers=rep).text,
             client.get(f"{API}/users", headers=login(client, "admin")).text]
    assert all(S2["legal_rep_id"] not in t for t in texts)
    assert S2["legal_rep_id"][-4:] in texts[0]  # masked, not absent


@pytest.mark.parametrize("password", ["", "x" * (MIN_PASSWORD_LENGTH - 1), " " * 20, "y" * 129])
def test_weak_passwords_are_refused(password):
    with pytest.raises(InvalidInput) as info:
        check_new_password(password)
    assert info.value.field == "password" and password not in info.value.message or not password.strip()


def test_a_password_of_the_minimum_length_is_accepted():
    assert check_new_password("x" * MIN_PASSWORD_LENGTH)


SANDU = str(Path(sys.executable).with_name("sandu"))


def _cli(args: list[str], db: Path, stdin: str = "", process: bool = False):
    """`sandu` on the store `db`: in this process (tests/cli_support.py), or with `process` a real `sandu` process."""
    env = {"SANDU_DATABASE_URL": f"sqlite:///{db}", "SANDU_SECRET_KEY": TEST_SECRET, "COLUMNS": "200"}
    if process:
        return subprocess.run([SANDU, *args], input=stdin, capture_output=True, text=True, timeout=120, env={**os.environ, **env}, cwd=db.parent)
    return sandu(args, env=env, input=stdin, cwd=db.parent)


def test_users_cli_creates_lists_disables_and_refuses_bad_input(tmp_path):
    db = tmp_path / "cli.db"
    # real processes: the schema, a user created with the password on stdin, and a refusal (exit 2, no traceback)
    assert _cli(["db", "upgrade"], db, process=True).returncode == 0
    ok = _cli(["users", "create", "--username", "wang.li", "--role", "approver", "--branch", "乐清", "--authority-fen", "500000000"], db,
              "a long enough password\n", process=True)
    assert ok.returncode == 0 and "created user" in ok.stdout, ok.stderr
    king = _cli(["users", "create", "--username", "who0", "--role", "king"], db, "a long enough password\n", process=True)
    assert king.returncode == 2 and "role" in king.stderr and "Traceback" not in king.stderr, (king.stdout, king.stderr)
    assert "a long enough password" not in king.stdout + king.stderr
    # the rest in this process, through the same entry point
    for args, stdin, field in [
        (["users", "create", "--username", "who1", "--role", "king"], "a long enough password\n", "role"),
        (["users", "create", "--username", "who2", "--role", "officer"], "short\n", "password"),
        (["users", "create", "--username", "who3", "--role", "officer"], "a long enough password\n", "branch"),
        (["users", "create", "--username", "Bad Name", "--role", "risk"], "a long enough password\n", "username"),
        (["users", "create", "--username", "wang.li", "--role", "risk"], "a long enough password\n", "username"),
    ]:
        r = _cli(args, db, stdin)
        assert r.returncode == 2 and field in r.stderr and "Traceback" not in r.stderr, (args, r.stdout, r.stderr)
        assert "a long enough password" not in r.stdout + r.stderr
    listed = _cli(["users", "list"], db)
    assert "wang.li" in listed.stdout and "approver" in listed.stdout and "who0" not in listed.stdout and "who1" not in listed.stdout
    assert _cli(["users", "disable", "--username", "wang.li"], db).returncode == 0
    assert "yes" in _cli(["users", "list"], db).stdout
    table = _cli(["authz", "table"], db)
    assert table.returncode == 0 and "lines.draw" in table.stdout and "fresh password" in table.stdout
    verify = _cli(["audit", "verify"], db)
    assert verify.returncode == 0 and "intact: 2 records" in verify.stdout, verify.stdout  # the create and the disable
    head = _cli(["audit", "head"], db).stdout.split()
    assert head[0] == "2" and len(head[1]) == 64


def test_the_roles_are_the_documented_seven():
    assert [str(r) for r in Role] == ["applicant", "officer", "approver", "risk", "operations", "admin", "auditor"]
