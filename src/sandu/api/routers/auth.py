"""Identities: sign up (applicants, alone), log in, refresh, log out, who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute
from sandu.security import actions
from sandu.security.views import TokenView, UserView

router = APIRouter(prefix="/auth", tags=["identities"], route_class=SanduRoute)


@router.post("/signup", name="auth.signup", status_code=201, response_model=UserView, responses=errors(409, 429, 503, public=True))
def signup(body: s.SignupIn, request: Request, rt: RT) -> UserView:
    """An applicant signs up alone — no account at the bank needed. Rate-limited per client address."""
    client = request.client.host if request.client else "unknown"
    return actions.signup(rt, username=body.username, password=body.password, resident_id=body.resident_id, client=client)


@router.post("/token", name="auth.token", response_model=TokenView, responses=errors(401, 503, public=True))
def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], rt: RT) -> TokenView:
    """OAuth2 password flow: a short-lived access token (15 minutes) and a refresh token.
    Five failed logins in a row lock the account for a while."""
    return actions.login(rt, username=form.username, password=form.password)


@router.post("/refresh", name="auth.refresh", response_model=TokenView, responses=errors(401, 503, public=True))
def refresh(body: s.RefreshIn, rt: RT) -> TokenView:
    """New tokens for a refresh token, which is used up; a used one presented again ends every session."""
    return actions.refresh(rt, refresh_token=body.refresh_token)


@router.post("/logout", name="auth.logout", status_code=204, response_class=Response, responses=errors(401, 503, public=True))
def logout(body: s.RefreshIn, rt: RT) -> Response:
    """Revoke a refresh token."""
    actions.logout(rt, refresh_token=body.refresh_token)
    return Response(status_code=204)


@router.get("/me", name="auth.me", response_model=UserView, responses=errors())
def me(actor: AsActor, rt: RT) -> UserView:
    return actions.me(rt, actor)
