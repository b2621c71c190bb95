"""Policy what-if for the console: a changed bundle tried against past applications."""

from __future__ import annotations

from fastapi import APIRouter

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import WhatIfView

router = APIRouter(prefix="/policy", tags=["policy"], route_class=SanduRoute)


@router.post("/simulations", name="policy.simulate", response_model=WhatIfView, responses=errors(503))
def simulate(body: s.SimulationIn, actor: AsActor, rt: RT) -> WhatIfView:
    """Re-decide each enterprise's latest decision since a day under the changed bundle and under the one in force
    (the table form of the engine): approval rate, total limit, average price, expected loss, outcome changes.
    Stores nothing."""
    changed = actions.policy_from_text(body.policy)
    return WhatIfView.of(actions.simulate_policy(rt, policy=changed, since=body.since, max_changes=body.max_changes))
