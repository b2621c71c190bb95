"""What the API shows of identities: users (personal data masked) and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from sandu.domain.enums import Role
from sandu.store import models as m


class UserView(BaseModel):
    id: int
    username: str
    role: Role
    branch: str | None
    authority_fen: int | None
    person_id_masked: str | None = Field(description="applicants: their resident ID, masked (sandu keeps no full ID)")
    disabled: bool
    created_at: datetime


class UserPage(BaseModel):
    users: list[UserView]
    next_after_id: int | None


class TokenView(BaseModel):
    """An OAuth2 token response."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str
    refresh_expires_in: int


class MemberView(BaseModel):
    enterprise_uscc: str
    username: str
    relation: str
    granted_at: datetime


def user_view(u: m.User) -> UserView:
    return UserView.model_validate(u, from_attributes=True)
