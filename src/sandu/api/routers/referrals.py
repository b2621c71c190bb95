"""The referral queue of a sub-branch: what waits for an officer, oldest first, with its age."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import ReferralPage

router = APIRouter(prefix="/referrals", tags=["origination"], route_class=SanduRoute)


@router.get("", name="referrals.list", response_model=ReferralPage, responses=errors())
def referrals(actor: AsActor, rt: RT, branch: s.BranchQuery = None, limit: s.ReferralLimit = 50, offset: s.ReferralOffset = 0) -> ReferralPage:
    """Applications referred to an officer (and requests for human review of a decline, with the decision attached),
    oldest first, with their age, amount and products. Officers and approvers see their own sub-branch's queue
    (another's is refused, 403); an admin any, or every one."""
    return actions.referrals(rt, actor, branch=branch, limit=limit, offset=offset)
