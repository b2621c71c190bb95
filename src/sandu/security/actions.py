"""What a user can do with identities, each in its own unit of work; and the guard the
API runs before a route: authenticate the token, check the role (the table in
`sandu.security.authz`), then the object, the freshness of the password and the rate limit."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import select

from sandu.audit import service as audit
from sandu.domain.enums import MemberRelation, Role
from sandu.domain.errors import InvalidInput, NotAuthenticated, NotFound, SanduError
from sandu.runtime import Runtime
from sandu.security import service as svc
from sandu.security.actor import Actor
from sandu.security.authz import rule_for
from sandu.security.limits import Limit
from sandu.security.views import MemberView, TokenView, UserPage, UserView, user_view
from sandu.store import models as m
from sandu.store.db import keyset_page

MAX_USER_PAGE = 200


def _limit(rt: Runtime, name: str) -> Limit:
    s = rt.settings
    return {
        "measure": Limit("measure", s.rate_measure_per_minute, 60),
        "movement": Limit("movement", s.rate_movement_per_minute, 60),
        "signup": Limit("signup", s.rate_signup_per_hour, 3600),
    }[name]


def _token_view(pair: svc.TokenPair, now: datetime) -> TokenView:
    return TokenView(access_token=pair.access_token, expires_in=int((pair.expires_at - now).total_seconds()),
                     refresh_token=pair.refresh_token, refresh_expires_in=int((pair.refresh_expires_at - now).total_seconds()))


def signup(rt: Runtime, *, username: str, password: str, resident_id: str, client: str) -> UserView:
    """An applicant signs up alone (no bank account needed); rate-limited per client address."""
    rt.limiter.hit(_limit(rt, "signup"), client, time.monotonic())
    now = rt.now()
    chosen = svc.new_password(rt.settings, username=username, password=password)  # hashed before the write takes the store's writer
    with rt.uow.write() as s:
        user = svc.create_user(s, rt.settings, username=username, password=chosen, role=Role.APPLICANT, resident_id=resident_id, now=now)
        audit.note(s, svc.actor_of(user, None), "user.signup", "user", user.id, at=now, after=user)
        view = user_view(user)
    return view


def login(rt: Runtime, *, username: str, password: str) -> TokenView:
    """Tokens for a username and password. A failure is committed too (the failed-login count). The password is checked
    before the write transaction (`svc.check_password`): its hash costs about 100 ms of CPU, and holds nothing."""
    now = rt.now()
    failure: SanduError | None = None
    with rt.uow.read_rows() as conn:
        read = svc.read_password(conn, username=username, password=password, now=now)
    checked = svc.check_password(rt.settings, read, password)
    with rt.uow.write() as s:
        try:
            user = svc.authenticate(s, rt.settings, username=username, password=password, now=now, checked=checked)
        except NotAuthenticated as exc:
            failure = exc
        else:
            pair = svc.issue_tokens(s, rt.settings, user, now=now, auth_time=now)
            audit.note(s, svc.actor_of(user, now), "auth.login", "user", user.id, at=now)
    if failure is not None:
        raise failure
    return _token_view(pair, now)


def refresh(rt: Runtime, *, refresh_token: str) -> TokenView:
    now = rt.now()
    failure: SanduError | None = None
    with rt.uow.write() as s:
        try:
            pair = svc.refresh(s, rt.settings, refresh_token=refresh_token, now=now)
        except NotAuthenticated as exc:
            failure = exc  # a reused token's revocations are committed before the refusal
    if failure is not None:
        raise failure
    return _token_view(pair, now)


def logout(rt: Runtime, *, refresh_token: str) -> None:
    with rt.uow.write() as s:
        svc.logout(s, refresh_token=refresh_token, now=rt.now())


def actor_by_username(rt: Runtime, username: str) -> Actor:
    """A user as an actor, for work done on the server in their name (the story replay)."""
    with rt.uow.read() as s:
        user = svc.find_user(s, username)
        if user.disabled:
            raise NotAuthenticated(f"user {username} is disabled")
        return svc.actor_of(user, rt.now())


def me(rt: Runtime, actor: Actor) -> UserView:
    with rt.uow.read() as s:
        return user_view(svc.get_user(s, actor.user_id))


def create_user(rt: Runtime, actor: Actor | None, *, username: str, password: str, role: str, branch: str | None = None,
                authority_fen: int | None = None, resident_id: str | None = None) -> UserView:
    """Staff are created by an admin (or, with `actor` None, by the command line on the server)."""
    now = rt.now()
    actor = actor or Actor.system("users", Role.ADMIN)
    chosen = svc.new_password(rt.settings, username=username, password=password)  # hashed before the write takes the store's writer
    with rt.uow.write() as s:
        user = svc.create_user(s, rt.settings, username=username, password=chosen, role=role, branch=branch, authority_fen=authority_fen,
                               resident_id=resident_id, created_by=actor.user_id, now=now)
        audit.note(s, actor, "user.create", "user", user.id, at=now, after=user)
        view = user_view(user)
    return view


def disable_user(rt: Runtime, actor: Actor | None, *, user_id: int | None = None, username: str | None = None) -> UserView:
    now = rt.now()
    actor = actor or Actor.system("users", Role.ADMIN)
    with rt.uow.write() as s:
        target = svc.get_user(s, user_id) if user_id is not None else svc.find_user(s, username or "")
        before = audit.state_sha256(target)
        user = svc.disable_user(s, user_id=target.id, now=now)
        audit.note(s, actor, "user.disable", "user", user.id, at=now, before=before, after=user)
        view = user_view(user)
    return view


def list_users(rt: Runtime, *, after_id: int = 0, limit: int = 100) -> UserPage:
    with rt.uow.read() as s:
        rows, next_after = keyset_page(s, select(m.User), m.User.id, after=after_id, limit=limit, max_limit=MAX_USER_PAGE)
        return UserPage(users=[user_view(u) for u in rows], next_after_id=next_after)


def bind_applicant(rt: Runtime, actor: Actor | None, *, username: str, uscc: str) -> MemberView:
    """An admin binds an applicant to an enterprise: as its legal representative when the
    person is the one the enterprise names, else as a delegate."""
    now = rt.now()
    actor = actor or Actor.system("users", Role.ADMIN)
    with rt.uow.write() as s:
        user = svc.find_user(s, username)
        ent = s.scalar(select(m.Enterprise).where(m.Enterprise.uscc == uscc)) if isinstance(uscc, str) else None
        if ent is None:
            raise NotFound("enterprise", uscc, field="enterprise")
        if user.role != Role.APPLICANT:
            raise InvalidInput("enterprise", f"{username} is a {user.role}; only applicants act for enterprises", "an applicant")
        legal_rep = user.person_id_hmac is not None and user.person_id_hmac == ent.legal_rep_id_hmac
        relation = MemberRelation.LEGAL_REP if legal_rep else MemberRelation.DELEGATE
        row = svc.add_member(s, user_id=user.id, enterprise_id=ent.id, relation=relation, granted_by=actor.user_id, now=now)
        audit.note(s, actor, "enterprise.member", "enterprise", ent.uscc, at=now, after=row)
        view = MemberView(enterprise_uscc=ent.uscc, username=username, relation=row.relation, granted_at=row.granted_at)
    return view


def add_delegate(rt: Runtime, actor: Actor, *, uscc: str, username: str) -> MemberView:
    now = rt.now()
    with rt.uow.write() as s:
        ent = s.scalar(select(m.Enterprise).where(m.Enterprise.uscc == uscc))
        assert ent is not None, "the guard admitted the enterprise"
        row = svc.add_delegate(s, actor, enterprise_id=ent.id, username=username, now=now)
        audit.note(s, actor, "enterprise.delegate", "enterprise", ent.uscc, at=now, after=row)
        view = MemberView(enterprise_uscc=ent.uscc, username=username, relation=row.relation, granted_at=row.granted_at)
    return view


# --- the guard ---------------------------------------------------------------------------


def authenticate(rt: Runtime, route: str, token: str | None) -> Actor | None:
    """Before anything else of a request: who it is (401) and whether the role may use the
    route at all (403). None for a public route."""
    rule = rule_for(route)
    if rule.public:
        return None
    with rt.uow.read_rows() as conn:
        actor = svc.authenticate_token(conn, rt.settings, token, rt.now())
    svc.check_role(rule, route, actor)
    return actor


def sign_in_for(rt: Runtime, route: str, *, username: str, password: str, object_key: object = None) -> Actor:
    """A person acting on the server's command line: their password (a failure counts, as a login's does), then the
    same guard as the API route `route` — its role (403 naming the rule) and its object within their reach (404)."""
    token = login(rt, username=username, password=password).access_token
    actor = authenticate(rt, route, token)
    assert actor is not None, f"{route} is not a public route"
    return admit(rt, route, actor, object_key)


def admit(rt: Runtime, route: str, actor: Actor, object_key: object = None) -> Actor:
    """After the request's parameters are valid: the object within the actor's reach (else
    404), a fresh password where the route needs one (401), and the rate limit (429)."""
    rule = rule_for(route)
    reach = svc.check_role(rule, route, actor)
    svc.check_fresh(rule, actor, rt.settings, rt.now())
    if rule.object is not None:
        with rt.uow.read_rows() as conn:
            svc.check_object(conn, rule, route, actor, reach, object_key)
    if rule.limit is not None:
        rt.limiter.hit(_limit(rt, rule.limit), f"user:{actor.user_id}", time.monotonic())
    return actor
