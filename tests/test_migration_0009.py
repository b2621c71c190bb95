"""Migration 0009 adds early-warning alerts and their steps. On SQLite and PostgreSQL: a store with an alert raised,
proposed and approved by today's services is taken back to 0008 (the alerts go; the frozen line stays frozen and the
trail keeps its records) and up again — empty tables with their constraints, in which the services raise anew."""

from __future__ import annotations

from fractions import Fraction

import pytest
from conftest import actor, runtime_on
from servicing_support import S2, open_line
from sqlalchemy import inspect, select, text
from test_alerts import DAY, collapse_revenue

from sandu.origination import actions as orig_actions
from sandu.servicing import actions as servicing
from sandu.servicing import alert_actions as alerts
from sandu.store import models as m
from sandu.store.migrate import current_revision, downgrade, head_revision, upgrade

ALERT_TABLES = {"alerts", "alert_steps"}


def test_alerts_go_down_to_0008_and_come_back_empty_with_their_constraints(db_url):
    rt = runtime_on(db_url)
    try:
        rt.clock.value = DAY
        line_id = open_line(rt)
        collapse_revenue(rt, S2["uscc"], Fraction(1, 2))
        [alert_id] = orig_actions.refresh_sources(rt, actor(rt, "officer-yongjia"), uscc=S2["uscc"]).alerts_raised
        alerts.propose(rt, actor(rt, "officer-yongjia"), alert_id=alert_id)
        alerts.approve(rt, actor(rt, "approver-yongjia"), alert_id=alert_id)
        assert servicing.get_line(rt, line_id).status == "frozen"

        assert downgrade(rt.engine, "0008") == "0008" == current_revision(rt.engine)
        assert not ALERT_TABLES & set(inspect(rt.engine).get_table_names())
        with rt.uow.read() as s:
            # what an approval did stays done (read as the 0008 schema has it: the models follow the head)
            assert s.scalar(text("SELECT status FROM credit_lines WHERE id = :id"), {"id": line_id}) == "frozen"
            assert s.scalar(text("SELECT COUNT(*) FROM audit_log WHERE action = 'alert.approve'")) == 1

        assert upgrade(rt.engine) == head_revision(rt.engine) == current_revision(rt.engine)
        insp = inspect(rt.engine)
        assert ALERT_TABLES <= set(insp.get_table_names())
        assert {"ck_alert_status", "ck_alert_four_eyes", "ck_alert_action", "ck_alert_limit"} <= {c["name"] for c in insp.get_check_constraints("alerts")}
        assert "uq_alert_open" in {i["name"] for i in insp.get_indexes("alerts")}
        with rt.uow.read() as s:
            assert s.scalars(select(m.Alert)).all() == []
        # the services go on: the line is unfrozen, and a scan raises the same evidence anew (its earlier alert went with the table)
        servicing.unfreeze(rt, actor(rt, "officer-yongjia"), line_id=line_id)
        assert alerts.scan(rt, actor(rt, "ops")).by_rule == {"revenue_collapse": 1}
        with pytest.raises(Exception, match="uq_alert|UNIQUE|unique"):
            with rt.uow.write() as s:
                a = s.scalars(select(m.Alert)).one()
                s.add(m.Alert(line_id=a.line_id, enterprise_id=a.enterprise_id, branch=a.branch, rule_id=a.rule_id, severity=a.severity,
                              status="acknowledged", rule_action=a.rule_action, summary="x", evidence={}, evidence_key="another", policy_version="p",
                              as_of=a.as_of, raised_at=a.raised_at, updated_at=a.updated_at))
        assert downgrade(rt.engine, "0008") == "0008" and upgrade(rt.engine) == head_revision(rt.engine)
    finally:
        rt.engine.dispose()
