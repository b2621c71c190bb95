"""Users: an admin creates staff and disables anyone; an auditor reads the list."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, UserIdPath, errors
from sandu.api.routing import SanduRoute
from sandu.security import actions
from sandu.security.views import UserPage, UserView

router = APIRouter(prefix="/users", tags=["identities"], route_class=SanduRoute)


@router.post("", name="users.create", status_code=201, response_model=UserView, responses=errors(409, 503))
def create_user(body: s.UserIn, actor: AsActor, rt: RT) -> UserView:
    """Create a user: staff by role; officers and approvers with a sub-branch and an authority; applicants with their resident ID."""
    return actions.create_user(rt, actor, username=body.username, password=body.password, role=body.role, branch=getattr(body, "branch", None),
                               authority_fen=getattr(body, "authority_fen", None), resident_id=getattr(body, "resident_id", None))


@router.get("", name="users.list", response_model=UserPage, responses=errors())
def list_users(actor: AsActor, rt: RT, after_id: s.PageAfterId = 0, limit: s.UserPageLimit = 100) -> UserPage:
    return actions.list_users(rt, after_id=after_id, limit=limit)


@router.post("/{user_id}/disable", name="users.disable", response_model=UserView, responses=errors(404, 503))
def disable_user(user_id: UserIdPath, actor: AsActor, rt: RT) -> UserView:
    """Disable a user and end all of their sessions."""
    return actions.disable_user(rt, actor, user_id=user_id)
