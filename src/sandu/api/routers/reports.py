"""Portfolio reports for the console and the bank's systems: from the journal, as of a day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sandu.analytics import actions
from sandu.analytics.actions import ROLL_MONTHS
from sandu.analytics.delinquency import MAX_ROLL_MONTHS
from sandu.analytics.views import PortfolioView
from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, errors
from sandu.api.routing import SanduRoute

router = APIRouter(prefix="/reports", tags=["reports"], route_class=SanduRoute)
Branch = Annotated[str | None, Query(min_length=1, max_length=16, description="a sub-branch (officers and approvers: their own)")]


@router.get("/portfolio", name="reports.portfolio", response_model=PortfolioView, responses=errors(409))
def portfolio(actor: AsActor, rt: RT, as_of: Annotated[s.IsoDate | None, Query(description="default: the business date")] = None,
              branch: Branch = None,
              since: Annotated[s.IsoDate | None, Query(alias="from", description="a day before as_of: the stage movement from it")] = None,
              months: Annotated[int, Query(ge=0, le=MAX_ROLL_MONTHS, description="month-end transitions of the roll rates")] = ROLL_MONTHS,
              ) -> PortfolioView:
    """Balances and limits by product, sub-branch, industry, tech and risk grade; 科技型 balance, growth and share;
    普惠型小微; 五级分类 and NPL ratio; overdue by DPD bucket; roll rates; IFRS 9 provisions as of the day and, given
    `from`, the stage movement since; measurement → first drawing."""
    return PortfolioView.of(actions.portfolio_report(rt, actor, as_of=as_of, branch=branch, since=since, roll_months=months))
