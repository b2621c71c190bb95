"""Identities on a session: users, passwords with login throttling, tokens, memberships,
and the guard that turns a bearer token into an authorized `Actor`.

Personal identifiers are never stored in the clear where they are looked up: a
resident ID is kept as its mask (for display) and an HMAC keyed with the store's
secret (for matching), so the mask and a plain hash cannot be combined to recover it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sandu.domain.dates import business_date
from sandu.domain.enums import MemberRelation, Role
from sandu.domain.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, NotPermitted, ReauthenticationRequired, show
from sandu.domain.ids import is_valid_uscc, mask_resident_id, validate_resident_id
from sandu.domain.keys import is_row_id, is_uuid
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.security import passwords, tokens
from sandu.security.actor import Actor
from sandu.security.authz import PATH_PARAM, ObjectKind, Reach, Rule
from sandu.settings import Settings
from sandu.store import models as m
from sandu.store.db import get_row

USERNAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{2,63}")
USERNAME_ALLOWED = "3..64 characters: a-z 0-9 _ . - (starting with a letter or digit)"
BRANCH_ROLES = (Role.OFFICER, Role.APPROVER)  # bound to a sub-branch, with an approval authority
MAX_BRANCH_LENGTH = 16


def pii_hmac(key: bytes, resident_id: str) -> str:
    """The keyed hash by which a resident ID is looked up."""
    return hmac.new(key, resident_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _password_hasher(settings: Settings):
    return passwords.hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise InvalidInput("username", f"got {show(username)}", USERNAME_ALLOWED)
    return username


@dataclass(frozen=True)
class NewPassword:
    """A password a new user chose, checked and hashed before the write transaction that creates the user: the hash
    (argon2, about 100 ms of CPU by design) never runs while the store's writer is held — on SQLite every write of
    every process would wait for it."""

    hash: str


def new_password(settings: Settings, *, username: object, password: object) -> NewPassword:
    """The username checked (its error comes first, as it always has), then the password, then the password hashed."""
    check_username(username)
    return NewPassword(passwords.hash_password(_password_hasher(settings), passwords.check_new_password(password)))


def create_user(
    session: Session, settings: Settings, *, username: str, password: NewPassword, role: str, now: datetime,
    branch: str | None = None, authority_fen: int | None = None, resident_id: str | None = None, created_by: int | None = None,
) -> m.User:
    """A new user with a password hashed beforehand (`new_password`). Applicants name the person (resident ID, one
    account per person); officers and approvers a sub-branch and an approval authority; other staff neither."""
    check_username(username)
    assert isinstance(password, NewPassword), "a new user's password is checked and hashed before the write (new_password)"
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("role", f"unknown role {show(role)}", ", ".join(Role)) from None
    if role in BRANCH_ROLES:
        if not isinstance(branch, str) or not 1 <= len(branch) <= MAX_BRANCH_LENGTH:
            raise InvalidInput("branch", f"a {role} belongs to a sub-branch", f"the sub-branch name, 1..{MAX_BRANCH_LENGTH} characters")
        if isinstance(authority_fen, bool) or not isinstance(authority_fen, int) or not 0 <= authority_fen <= MAX_AMOUNT_FEN:
            raise InvalidInput("authority_fen", f"a {role} has an approval authority, got {show(authority_fen)}", f"0..{MAX_AMOUNT_FEN} fen")
    elif branch is not None or authority_fen is not None:
        raise InvalidInput("branch", f"a {role} has no sub-branch and no approval authority", "only officers and approvers have them")
    person_hmac = person_mask = None
    if role is Role.APPLICANT:
        if resident_id is None:
            raise InvalidInput("resident_id", "an applicant is a person: give their resident ID", "a resident ID (GB 11643-1999)")
        validate_resident_id(resident_id, field="resident_id", today=business_date(now))
        person_hmac, person_mask = pii_hmac(settings.derived_key("pii"), resident_id), mask_resident_id(resident_id)
        taken = session.scalar(select(m.User.id).where(m.User.person_id_hmac == person_hmac, m.User.role == Role.APPLICANT))
        if taken is not None:
            raise Conflict("resident_id", "this person already has an applicant account", "log in to it instead")
    elif resident_id is not None:
        raise InvalidInput("resident_id", "only applicants are identified by a resident ID", "omit it for staff")
    if session.scalar(select(m.User.id).where(m.User.username == username)) is not None:
        raise Conflict("username", "is taken", "another username")
    user = m.User(
        username=username, password_hash=password.hash, role=role, branch=branch,
        authority_fen=authority_fen, person_id_hmac=person_hmac, person_id_masked=person_mask, disabled=False, failed_logins=0,
        locked_until=None, created_at=now, created_by=created_by,
    )
    try:
        with session.begin_nested():  # a concurrent sign-up of the same name loses here
            session.add(user)
    except IntegrityError:
        raise Conflict("username", "is taken", "another username") from None
    return user


def get_user(session: Session, user_id: int) -> m.User:
    user = session.get(m.User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None
    if user is None:
        raise NotFound("user", user_id, field="user_id")
    return user


def find_user(session: Session, username: str) -> m.User:
    user = session.scalar(select(m.User).where(m.User.username == username)) if isinstance(username, str) else None
    if user is None:
        raise NotFound("user", username, field="username")
    return user


WRONG_LOGIN = "wrong username or password"


_LOGIN_OF = select(m.User.__table__.c.password_hash, m.User.__table__.c.locked_until).where(m.User.__table__.c.username == bindparam("username"))


@dataclass(frozen=True)
class PasswordCheck:
    """A login's password checked before its write transaction against the hash then stored for the username (None:
    no such user, and a decoy hash is checked instead, so that both cost the same). The check — argon2, about 100 ms
    of CPU by design — holds neither the store's writer (on SQLite every write of every process would wait for it) nor
    a connection; `authenticate` takes `ok` only if the hash it reads under lock is still the one checked, and checks
    again otherwise. `ok` None: not checked (yet, or at all: the account was locked)."""

    stored_hash: str | None
    locked: bool
    ok: bool | None = None


def read_password(conn: Connection, *, username: object, password: object, now: datetime) -> PasswordCheck:
    """Step one of a login, on a read (`conn`): the hash stored for `username`. Input no login accepts is the same 401
    as a wrong password, at once."""
    if not isinstance(username, str) or not isinstance(password, str) or len(password) > passwords.MAX_PASSWORD_LENGTH:
        raise NotAuthenticated(WRONG_LOGIN)
    row = conn.execute(_LOGIN_OF, {"username": username}).one_or_none()
    if row is None:
        return PasswordCheck(None, locked=False)
    return PasswordCheck(row.password_hash, locked=row.locked_until is not None and row.locked_until > now)


def check_password(settings: Settings, read: PasswordCheck, password: str) -> PasswordCheck:
    """Step two, outside any transaction: the password checked against the hash read (not for a locked account:
    `authenticate` says until when)."""
    if read.locked:
        return read
    return replace(read, ok=passwords.verify_password(_password_hasher(settings), read.stored_hash, password))


def authenticate(session: Session, settings: Settings, *, username: str, password: str, now: datetime, checked: PasswordCheck) -> m.User:
    """Step three of a login, in its write transaction: the user whose password this is, by `checked` (`check_password`).
    Every failure is the same 401 (an unknown name costs a password check too); `SANDU_LOGIN_MAX_FAILURES` failures in a
    row lock the account for `SANDU_LOGIN_LOCK_MINUTES`, and a locked account says until when."""
    user = session.scalar(select(m.User).where(m.User.username == username).with_for_update())
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise NotAuthenticated(f"too many failed logins: the account is locked until {user.locked_until:%Y-%m-%d %H:%M} UTC")
    if user is None:
        raise NotAuthenticated(WRONG_LOGIN)
    still = checked.ok is not None and checked.stored_hash == user.password_hash
    ok = checked.ok if still else passwords.verify_password(_password_hasher(settings), user.password_hash, password)  # changed meanwhile: rare
    if not ok or user.disabled:
        if not ok:
            user.failed_logins += 1
            if user.failed_logins >= settings.login_max_failures:
                user.locked_until, user.failed_logins = now + timedelta(minutes=settings.login_lock_minutes), 0
        raise NotAuthenticated(WRONG_LOGIN)
    user.failed_logins, user.locked_until = 0, None
    return user


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


def issue_tokens(session: Session, settings: Settings, user: m.User, *, now: datetime, auth_time: datetime) -> TokenPair:
    access, expires = tokens.issue_access(settings.derived_key("jwt"), user_id=user.id, role=user.role, now=now, auth_time=auth_time,
                                         minutes=settings.access_token_minutes)
    refresh, digest = tokens.new_refresh_token()
    refresh_expires = now + timedelta(days=settings.refresh_token_days)
    session.add(m.RefreshToken(id=str(uuid.uuid4()), user_id=user.id, token_sha256=digest, issued_at=now, expires_at=refresh_expires,
                               auth_time=auth_time, revoked_at=None))
    session.flush()
    return TokenPair(access, expires, refresh, refresh_expires)


def _refresh_row(session: Session, refresh_token: object) -> m.RefreshToken:
    if not isinstance(refresh_token, str) or not 1 <= len(refresh_token) <= 200:
        raise NotAuthenticated("unknown refresh token")
    row = session.scalar(select(m.RefreshToken).where(m.RefreshToken.token_sha256 == tokens.refresh_digest(refresh_token)).with_for_update())
    if row is None:
        raise NotAuthenticated("unknown refresh token")
    return row


def refresh(session: Session, settings: Settings, *, refresh_token: str, now: datetime) -> TokenPair:
    """New tokens for a live refresh token, which is used up (rotation). Presenting a used
    or revoked one again revokes every token of its user: it was stolen, or leaked."""
    row = _refresh_row(session, refresh_token)
    if row.revoked_at is not None:
        session.execute(update(m.RefreshToken).where(m.RefreshToken.user_id == row.user_id, m.RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
        raise NotAuthenticated("this refresh token was already used or revoked; every session of the account has been ended")
    if row.expires_at <= now:
        raise NotAuthenticated("the refresh token has expired; log in again")
    user = session.get(m.User, row.user_id)
    if user is None or user.disabled:
        raise NotAuthenticated("the account is disabled")
    row.revoked_at = now
    return issue_tokens(session, settings, user, now=now, auth_time=row.auth_time)


def logout(session: Session, *, refresh_token: str, now: datetime) -> None:
    row = _refresh_row(session, refresh_token)
    if row.revoked_at is None:
        row.revoked_at = now


def disable_user(session: Session, *, user_id: int, now: datetime) -> m.User:
    """Disable a user and end all of their sessions."""
    user = get_user(session, user_id)
    user.disabled = True
    session.execute(update(m.RefreshToken).where(m.RefreshToken.user_id == user.id, m.RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
    return user


def actor_of(user: m.User | Row[Any], auth_time: datetime | None) -> Actor:
    """The actor of a user (an ORM object or a row of the same columns)."""
    return Actor(user_id=user.id, username=user.username, role=Role(user.role), branch=user.branch, authority_fen=user.authority_fen,
                 person_id_hmac=user.person_id_hmac, person_id_masked=user.person_id_masked, auth_time=auth_time)


# --- memberships ----------------------------------------------------------------------


def relation_of(session: Session, user_id: int | None, enterprise_id: int) -> MemberRelation | None:
    if user_id is None:
        return None
    row = get_row(session, m.Membership, (user_id, enterprise_id))
    return None if row is None else MemberRelation(row.relation)


def add_member(session: Session, *, user_id: int, enterprise_id: int, relation: MemberRelation, granted_by: int | None, now: datetime) -> m.Membership:
    if relation_of(session, user_id, enterprise_id) is not None:
        raise Conflict("username", "is already a member of this enterprise", "someone who is not yet a member")
    row = m.Membership(user_id=user_id, enterprise_id=enterprise_id, relation=relation, granted_by=granted_by, granted_at=now)
    session.add(row)
    session.flush()
    return row


def add_delegate(session: Session, actor: Actor, *, enterprise_id: int, username: str, now: datetime) -> m.Membership:
    """The legal representative lets another applicant act for the enterprise (measure, draw,
    repay, read) — not sign, consent or revoke, which stay with the legal representative."""
    user = session.scalar(select(m.User).where(m.User.username == username)) if isinstance(username, str) else None
    if user is None or user.role != Role.APPLICANT or user.disabled:
        raise NotFound("applicant", username, field="username")
    return add_member(session, user_id=user.id, enterprise_id=enterprise_id, relation=MemberRelation.DELEGATE, granted_by=actor.user_id, now=now)


# --- the guard --------------------------------------------------------------------------


_USERS = m.User.__table__
_USER_OF_TOKEN = select(*(_USERS.c[k] for k in ("id", "username", "role", "branch", "authority_fen", "person_id_hmac", "person_id_masked",
                                                "disabled"))).where(_USERS.c.id == bindparam("user_id"))


def authenticate_token(conn: Connection, settings: Settings, token: str | None, now: datetime) -> Actor:
    """The actor behind a bearer token: signed by sandu, unexpired, for a user who is still
    enabled and still has the role the token names (read on `conn`, a read transaction)."""
    if not token:
        raise NotAuthenticated("this needs a bearer token (POST /api/v1/auth/token)")
    try:
        claims = tokens.decode_access(settings.derived_key("jwt"), token, now)
    except tokens.TokenInvalid as exc:
        raise NotAuthenticated(exc.reason) from None
    # The user's row read by primary key on every request (no cache: a user disabled in any process is refused on the
    # very next request), as a plain Core row of the columns an actor needs rather than an ORM object.
    user = conn.execute(_USER_OF_TOKEN, {"user_id": claims.user_id}).one_or_none()
    if user is None or user.disabled or user.role != claims.role:
        raise NotAuthenticated("the account behind this token is disabled or has changed")
    return actor_of(user, claims.auth_time)


def check_role(rule: Rule, route: str, actor: Actor) -> Reach:
    reach = rule.roles.get(actor.role)
    if reach is None:
        allowed = ", ".join(str(r) for r in rule.roles)
        raise NotPermitted(None, f"a {actor.role} may not do {route}", f"roles {allowed}", rule=f"authz.{route}")
    return reach


def check_fresh(rule: Rule, actor: Actor, settings: Settings, now: datetime) -> None:
    if not rule.fresh:
        return
    limit = timedelta(minutes=settings.reauth_minutes)
    if actor.auth_time is None or now - actor.auth_time > limit:
        raise ReauthenticationRequired(
            f"signing and drawing need your password given within the last {settings.reauth_minutes} minutes: log in again (POST /api/v1/auth/token)"
        )


@dataclass(frozen=True)
class Standing:
    """Where an actor stands with the enterprise behind an object: the enterprise's sub-branch and its legal
    representative (the resident ID's keyed hash), and the actor's membership of it (None: not a member)."""

    branch: str
    legal_rep_id_hmac: str | None
    relation: MemberRelation | None


_ENTERPRISES, _MEMBERSHIPS = m.Enterprise.__table__, m.Membership.__table__
_OBJECT_TABLES = {ObjectKind.CONSENT: m.Consent.__table__, ObjectKind.DECISION: m.Decision.__table__, ObjectKind.LINE: m.CreditLine.__table__,
                  ObjectKind.APPLICATION: m.Application.__table__, ObjectKind.ALERT: m.Alert.__table__}


def _standing_statement(kind: ObjectKind) -> Select[Any]:
    """One statement per kind of object: the object's enterprise and the user's membership of it, by the object's key
    (`:key`) and the user (`:user_id`; NULL matches no membership)."""
    e, mem = _ENTERPRISES, _MEMBERSHIPS
    member = (mem.c.enterprise_id == e.c.id) & (mem.c.user_id == bindparam("user_id"))
    columns = (e.c.branch, e.c.legal_rep_id_hmac, mem.c.relation)
    if kind is ObjectKind.ENTERPRISE:
        return select(*columns).select_from(e.outerjoin(mem, member)).where(e.c.uscc == bindparam("key"))
    t = _OBJECT_TABLES[kind]
    return select(*columns).select_from(t.join(e, e.c.id == t.c.enterprise_id).outerjoin(mem, member)).where(t.c.id == bindparam("key"))


_STANDING = {kind: _standing_statement(kind) for kind in ObjectKind}  # built once (see sandu.store.db)


def _valid_key(kind: ObjectKind, key: object) -> bool:
    if kind is ObjectKind.ENTERPRISE:
        return is_valid_uscc(key)
    return is_row_id(key) if kind in (ObjectKind.LINE, ObjectKind.APPLICATION, ObjectKind.ALERT) else is_uuid(key)


def standing(conn: Connection, actor: Actor, kind: ObjectKind, key: object) -> Standing | None:
    """The actor's standing with the enterprise an object belongs to, in one statement on `conn` (None when the object
    does not exist)."""
    if not _valid_key(kind, key):
        return None
    row = conn.execute(_STANDING[kind], {"key": key, "user_id": actor.user_id}).one_or_none()
    if row is None:
        return None
    return Standing(row.branch, row.legal_rep_id_hmac, None if row.relation is None else MemberRelation(row.relation))


def legal_rep_in_person(actor: Actor, relation: MemberRelation | None, legal_rep_id_hmac: str | None) -> bool:
    """The enterprise's legal representative in person: the membership says so, and the person (their resident ID's
    keyed hash) is the one the enterprise names."""
    return (actor.role is Role.APPLICANT and relation is MemberRelation.LEGAL_REP and actor.person_id_hmac is not None
            and actor.person_id_hmac == legal_rep_id_hmac)


def is_legal_rep(session: Session, actor: Actor, ent: m.Enterprise) -> bool:
    """`legal_rep_in_person`, the membership read on `session`."""
    return actor.role is Role.APPLICANT and legal_rep_in_person(actor, relation_of(session, actor.user_id, ent.id), ent.legal_rep_id_hmac)


def reaches(actor: Actor, reach: Reach, at: Standing) -> bool:
    if reach is Reach.ANY or reach is Reach.NONE:
        return reach is Reach.ANY
    if reach is Reach.BRANCH:
        return actor.role.is_staff and actor.branch is not None and actor.branch == at.branch
    if reach is Reach.MEMBER:
        return actor.role is Role.APPLICANT and at.relation is not None
    return legal_rep_in_person(actor, at.relation, at.legal_rep_id_hmac)


def staff_branch(actor: Actor, branch: object, *, what: str, rule: str) -> str | None:
    """Whose `what` (a sub-branch's referral queue, its early-warning alerts) `actor` may list: an officer's or
    approver's own sub-branch (another is refused, 403 naming `rule`); an admin's or a system job's any (None: every
    sub-branch)."""
    if branch is not None and (not isinstance(branch, str) or not 1 <= len(branch) <= 16):
        raise InvalidInput("branch", f"got {show(branch)}", "a sub-branch name, 1..16 characters")
    if actor.role is Role.ADMIN or actor.user_id is None:
        return branch
    if actor.role not in (Role.OFFICER, Role.APPROVER) or actor.branch is None:
        raise NotPermitted(None, f"a {actor.role} has no {what}", "officers and approvers (their sub-branch), admins (any)", rule=rule)
    if branch is not None and branch != actor.branch:
        raise NotPermitted("branch", f"the {what} of {branch} is not yours", f"{actor.branch} (your sub-branch)", rule=rule)
    return actor.branch


def check_object(conn: Connection, rule: Rule, route: str, actor: Actor, reach: Reach, key: object) -> None:
    """The route's object exists and is within the actor's reach; else 404, the same answer as for an object that does
    not exist. Read on `conn`, a read transaction."""
    assert rule.object is not None, f"{route}: no object kind in its rule"
    at = standing(conn, actor, rule.object, key)
    if at is None or not reaches(actor, reach, at):
        raise NotFound(str(rule.object), key, field=PATH_PARAM[rule.object])
