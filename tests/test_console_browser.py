"""The staff console (/console) in a real headless Chromium against a real server on 127.0.0.1: a referred application
handled by two people (the officer refers it up, an approver approves; the officer approving their own review is
refused with the rule on the page); 拒绝 of a referred application, seen by the applicant; one sub-branch's queue
without another's; servicing a line and its statement; the policy what-if; bad input answered in Chinese next to its
field with nothing changed; and no request leaving 127.0.0.1 on any page. Screenshots of each page at 1,440 px (the
queue also at 360 px) go to test-artifacts/console/."""

from __future__ import annotations

import os
import shutil
from datetime import date
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from conftest import TEST_PASSWORD, actor, known_to_decline, login

from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.origination import actions
from sandu.security import actions as security
from sandu.servicing import actions as servicing
from sandu.simulate.stories import STORY_ROWS
from sandu.sources.catalog import ALL_SOURCES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "console"
DESK, PHONE = {"width": 1440, "height": 900}, {"width": 360, "height": 780}
S2, S4, S5 = STORY_ROWS[1], STORY_ROWS[3], STORY_ROWS[4]
pytestmark = pytest.mark.browser


class Browser:
    """A Chromium context that lets only 127.0.0.1 through: any other host is aborted and remembered."""

    def __init__(self, browser, base: str):
        self.base = base
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport=DESK, locale="zh-CN")
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)

    def _only_loopback(self, route) -> None:
        url = route.request.url
        if urlparse(url).hostname != "127.0.0.1":
            self.foreign.append(url)
            route.abort()
        else:
            route.continue_()

    def log_in(self, username: str) -> None:
        pg = self.page
        pg.goto(f"{self.base}/console")
        pg.wait_for_url("**/console/login")
        pg.fill("#username", username)
        pg.fill("#password", TEST_PASSWORD)
        pg.click("button[type=submit]")
        pg.wait_for_url(lambda url: "/console/login" not in url)

    def log_out(self) -> None:
        self.page.click("form.who button[type=submit]")
        self.page.wait_for_url("**/console/login")

    def shot(self, name: str, size: dict | None = None) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if size is not None:
            self.page.set_viewport_size(size)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}-{(size or DESK)['width']}.png"), full_page=True)
        if size is not None:
            self.page.set_viewport_size(DESK)


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed and CI=true requires the browser tests (apt-get install chromium)")
        pytest.skip("chromium not installed: skipping the browser test (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console(chromium, live_server):
    b = Browser(chromium, live_server)
    yield b
    b.context.close()
    assert b.foreign == [], f"requests left 127.0.0.1: {b.foreign}"


def _measured(rt, row):
    """The story's legal representative registers, authorizes every source and measures (the applicant's own actions)."""
    rep = actor(rt, f"rep-{row['story'].lower()}")
    actions.register(rt, rep, uscc=row["uscc"], name=row["name"])
    c = actions.grant_consent(rt, rep, uscc=row["uscc"], scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30,
                              bureau_authorization=True)
    return actions.measure(rt, rep, uscc=row["uscc"], consent_id=c.id)


def _alert(pg, scope: str):
    return pg.locator(f"{scope} [role=alert]")


def test_a_referred_application_is_referred_up_by_the_officer_and_approved_by_someone_else(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    d = _measured(rt, S5)  # 苍南: 抵押+信用 6,300万, everything referred
    assert d.outcome == "refer" and [o.product for o in d.offers if o.referred_fen] == ["diya_xinyong"]
    console.log_in("officer-cangnan")
    pg.wait_for_url("**/console/queue")
    row = pg.locator(f"tr[data-application='{d.application_id}']")
    assert S5["name"] in row.inner_text() and "6,300.00万" in row.inner_text() and "抵押+信用" in row.inner_text()
    assert row.locator("[data-sla]").get_attribute("data-sla") == "ok" and "剩余" in row.inner_text()
    console.shot("queue")
    console.shot("queue", PHONE)
    row.locator("a").click()
    pg.wait_for_url(f"**/console/applications/{d.application_id}")
    offer = pg.locator("[data-product=diya_xinyong]")
    assert "年化利率" in offer.inner_text() and "3.00%" in offer.inner_text()
    assert pg.inner_text("#limit") == "6,300.00万" and pg.inner_text("#referred") == "6,300.00万"
    assert pg.locator("table.rules tr").count() > 3 and pg.locator("table.history tr[data-action=refer]").count() == 1
    console.shot("application")
    # an empty opinion: refused in Chinese next to the field, nothing reviewed
    offer.get_by_role("button", name="提交上级审批", exact=True).click()
    alert = _alert(pg, "[data-product=diya_xinyong] form[data-action=review]")
    assert alert.get_attribute("data-field") == "opinion" and "审查意见不能为空" in alert.inner_text()
    assert pg.get_attribute("#opinion-diya_xinyong", "aria-invalid") == "true"
    assert actions.get_decision(rt, d.id).offers[0].reviewed_by is None
    console.shot("application-bad-opinion")
    # 提交上级审批: the officer's review with an opinion
    pg.fill("#opinion-diya_xinyong", "抵押物足值，经营稳定，同意报审")
    pg.locator("[data-product=diya_xinyong]").get_by_role("button", name="提交上级审批", exact=True).click()
    pg.wait_for_url("**done=review")
    assert pg.inner_text("#done") == "已提交上级审批"
    officer = actor(rt, "officer-cangnan")
    assert actions.get_decision(rt, d.id).offers[0].reviewed_by == officer.user_id
    # the same officer may not approve what they reviewed: the server refuses, the rule is shown next to 批准
    pg.locator("[data-product=diya_xinyong]").get_by_role("button", name="批准", exact=True).click()
    alert = _alert(pg, "[data-product=diya_xinyong] form[data-action=approve]")
    assert alert.get_attribute("data-rule") == "maker_checker.reviewer"
    assert "审贷分离" in alert.inner_text() and "maker_checker.reviewer" in alert.inner_text()
    assert pg.get_attribute("#app-state", "data-state") == "referred"
    assert actions.get_application(rt, d.application_id).state == "referred"
    console.shot("application-refused")
    console.log_out()
    # 批准 by the sub-branch's approver
    console.log_in("approver-cangnan")
    pg.goto(f"{console.base}/console/applications/{d.application_id}")
    assert "提交上级审批" not in pg.inner_text("main")  # an approver does not review (the table's decisions.review)
    pg.locator("[data-product=diya_xinyong]").get_by_role("button", name="批准", exact=True).click()
    pg.wait_for_url("**done=approve")
    assert pg.get_attribute("#app-state", "data-state") == "approved" and pg.inner_text("#approved") == "6,300.00万"
    view = actions.get_application(rt, d.application_id)
    assert view.state == "approved" and view.transitions[-1].actor_user_id == actor(rt, "approver-cangnan").user_id
    # replay: the stored decision recomputed under the versions in force
    pg.get_by_role("button", name="复算", exact=True).click()
    assert pg.get_attribute("#replay-result", "data-identical") == "true"
    console.shot("application-approved")


def test_an_officer_declines_a_referred_application_and_the_applicant_sees_it_declined(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    d = _measured(rt, S5)
    console.log_in("officer-cangnan")
    pg.goto(f"{console.base}/console/applications/{d.application_id}")
    pg.get_by_role("button", name="拒绝", exact=True).click()  # no reason: refused next to the field
    alert = _alert(pg, "form[data-action=decline]")
    assert alert.get_attribute("data-field") == "reason" and "拒绝理由不能为空" in alert.inner_text()
    assert actions.get_application(rt, d.application_id).state == "referred"
    pg.fill("#reason", "抵押物估值存疑，经营现金流不足以覆盖本息")
    pg.get_by_role("button", name="拒绝", exact=True).click()
    pg.wait_for_url("**done=decline")
    assert pg.get_attribute("#app-state", "data-state") == "declined" and pg.inner_text("#done") == "已拒绝"
    assert pg.locator("form[data-action=decline]").count() == 0 and pg.locator("form[data-action=approve]").count() == 1
    assert "人工拒绝" in pg.inner_text("table.history tr[data-action=reject]")
    console.shot("application-declined")
    with httpx.Client(base_url=console.base, timeout=30) as c:  # the applicant's own view of the application
        seen = c.get(f"/api/v1/applications/{d.application_id}", headers=login(c, "rep-s5")).json()
    assert seen["state"] == "declined" and seen["transitions"][-1]["action"] == "reject" and "抵押物估值存疑" in seen["transitions"][-1]["reason"]
    # and the queue no longer holds it
    pg.goto(f"{console.base}/console/queue")
    assert pg.locator(f"tr[data-application='{d.application_id}']").count() == 0 and pg.inner_text("#queue-total") == "0"


def test_the_queue_of_one_sub_branch_does_not_show_another_and_staff_only_log_in(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    d4, d5 = _measured(rt, S4), _measured(rt, S5)  # 龙湾 (partly referred) and 苍南
    console.log_in("officer-longwan")
    pg.wait_for_url("**/console/queue")
    assert pg.locator(f"tr[data-application='{d4.application_id}']").count() == 1
    assert pg.locator(f"tr[data-application='{d5.application_id}']").count() == 0 and S5["name"] not in pg.inner_text("main")
    assert pg.inner_text("#queue-total") == "1"
    pg.goto(f"{console.base}/console/applications/{d5.application_id}")  # another sub-branch's application: as if it did not exist
    assert "不存在" in pg.inner_text("[role=alert]")
    console.shot("error")
    pg.goto(f"{console.base}/console/queue?branch=苍南")  # another sub-branch's queue by name: refused with its rule
    assert pg.get_attribute("[role=alert]", "data-rule") == "referrals.branch"
    console.log_out()
    console.log_in("officer-cangnan")
    pg.wait_for_url("**/console/queue")
    assert pg.locator(f"tr[data-application='{d5.application_id}']").count() == 1 and pg.locator(f"tr[data-application='{d4.application_id}']").count() == 0
    console.log_out()
    console.shot("login")
    pg.fill("#username", "rep-s5")  # an applicant is refused with a clear message
    pg.fill("#password", TEST_PASSWORD)
    pg.click("button[type=submit]")
    alert = pg.locator("[role=alert]")
    assert "申请人账户不能登录员工工作台" in alert.inner_text() and alert.get_attribute("data-rule") == "authz.web.console"
    assert "/console/login" in pg.url


def test_servicing_a_line_with_bad_input_refused_in_chinese_and_its_statement(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    d = _measured(rt, S2)  # 永嘉: 经营快贷 416万, approved by the policy
    rep = actor(rt, "rep-s2")
    line = actions.accept_offer(rt, rep, decision_id=d.id, product="jingying_kuaidai")
    servicing.draw(rt, rep, line_id=line.id, amount_fen=50 * 1_000_000, idempotency_key="console-draw")
    console.log_in("officer-yongjia")
    pg.goto(f"{console.base}/console/lookup")
    console.shot("lookup")
    pg.fill("#line_id", str(line.id))
    pg.locator("form", has=pg.locator("#line_id")).get_by_role("button").click()
    pg.wait_for_url(f"**/console/lines/{line.id}")
    assert pg.inner_text("#line-limit") == "416.00万" and pg.get_attribute("#line-status", "data-status") == "active"
    assert pg.locator("table.movements tbody tr").count() >= 1 and "借款" in pg.inner_text("table.movements")
    for typed, said in (("abc", "必须是数字"), ("-5", "不能为负数"), ("", "不能为空"), ("500", "必须低于现有额度"), ("10", "不能低于已用本金")):
        pg.fill("#limit_wan", typed)
        pg.get_by_role("button", name="调减额度", exact=True).click()
        alert = _alert(pg, "form[data-action=reduce]")
        assert alert.get_attribute("data-field") == "limit_wan" and said in alert.inner_text(), (typed, alert.inner_text())
        assert pg.input_value("#limit_wan") == typed and pg.get_attribute("#limit_wan", "aria-invalid") == "true"
        assert servicing.get_line(rt, line.id).limit_fen == 416 * 1_000_000
    console.shot("line-bad-reduce")
    pg.get_by_role("button", name="冻结", exact=True).click()
    pg.wait_for_url("**done=freeze")
    assert pg.get_attribute("#line-status", "data-status") == "frozen" and servicing.get_line(rt, line.id).status == "frozen"
    pg.get_by_role("button", name="解冻", exact=True).click()
    pg.wait_for_url("**done=unfreeze")
    assert servicing.get_line(rt, line.id).status == "active"
    pg.fill("#limit_wan", "300")
    pg.get_by_role("button", name="调减额度", exact=True).click()
    pg.wait_for_url("**done=reduce")
    assert pg.inner_text("#line-limit") == "300.00万" and servicing.get_line(rt, line.id).limit_fen == 300 * 1_000_000
    assert pg.get_by_role("button", name="续期", exact=True).count() == 0  # renewal is an approver's (lines.renew)
    pg.fill("#st-from", "2026-12-01")  # a period ending before it starts: refused next to the field
    pg.fill("#st-to", "2026-11-01")
    pg.locator("#statement form").get_by_role("button").click()
    assert _alert(pg, "#statement").get_attribute("data-field") == "to"
    console.shot("line")


def test_the_policy_what_if_compares_a_changed_bundle_with_the_one_in_force(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    for row in (S2, S4, S5):
        _measured(rt, row)
    text = resources.files("sandu.policy.bundles").joinpath("default.toml").read_text(encoding="utf-8")
    console.log_in("risk")
    pg.goto(f"{console.base}/console/policy")
    pg.fill("#policy", "")
    pg.get_by_role("button", name="模拟", exact=True).click()
    assert pg.get_attribute("[role=alert]", "data-field") == "policy" and "策略包不能为空" in pg.inner_text("[role=alert]")
    pg.fill("#policy", text)
    pg.fill("#since", "2026-13-01")
    pg.get_by_role("button", name="模拟", exact=True).click()
    assert pg.get_attribute("[role=alert]", "data-field") == "since" and "日期" in pg.inner_text("[role=alert]")
    pg.fill("#policy", "")  # a file chosen instead of pasted text
    pg.fill("#since", "2026-01-01")
    pg.set_input_files("#policy_file", {"name": "changed.toml", "mimeType": "text/plain", "buffer": b"[products\n"})
    pg.get_by_role("button", name="模拟", exact=True).click()
    assert pg.get_attribute("[role=alert]", "data-field") == "policy" and "line 1" in pg.inner_text("[role=alert]")
    pg.fill("#policy", text)  # the bundle in force itself: the same figures on both sides, no outcome changes
    pg.fill("#since", "2026-01-01")
    pg.get_by_role("button", name="模拟", exact=True).click()
    assert pg.inner_text("#outcome-changes") == "0"
    rows = pg.locator("table.compare tbody tr")
    assert rows.count() == 9
    for k in range(rows.count()):
        cells = rows.nth(k).locator("td")
        assert cells.nth(1).inner_text() == cells.nth(2).inner_text()
    assert rows.nth(0).locator("td").nth(1).inner_text() == "3"
    console.shot("policy")


def test_a_human_review_of_a_decline_is_reviewed_by_one_officer_and_confirmed_by_another(console, rt_sqlite):
    rt, pg = rt_sqlite, console.page
    body = "87654322"
    uscc, rep_id = make_uscc("9", "1", "330302", body + org_code_check_char(body)), make_resident_id("330302", date(1982, 3, 4), "137")
    known_to_decline(rt, uscc, "温州复核电子有限公司", rep_id)  # 鹿城: declined by the policy
    security.create_user(rt, None, username="owner-lc", password=TEST_PASSWORD, role="applicant", resident_id=rep_id)
    for name, role in (("officer-lucheng", "officer"), ("approver-lucheng", "approver")):
        security.create_user(rt, None, username=name, password=TEST_PASSWORD, role=role, branch="鹿城", authority_fen=500 * 1_000_000)
    rep = actor(rt, "owner-lc")
    actions.register(rt, rep, uscc=uscc, name="温州复核电子有限公司")
    c = actions.grant_consent(rt, rep, uscc=uscc, scopes=list(ALL_SOURCES), purpose="credit_measurement", valid_days=30, bureau_authorization=True)
    d = actions.measure(rt, rep, uscc=uscc, consent_id=c.id)
    assert d.outcome == "decline"
    actions.request_human_review(rt, rep, decision_id=d.id, reason="我司新获发明专利，请人工复核")
    console.log_in("officer-lucheng")
    pg.wait_for_url("**/console/queue")
    assert "人工复核" in pg.inner_text(f"tr[data-application='{d.application_id}']")
    pg.goto(f"{console.base}/console/applications/{d.application_id}")
    assert pg.locator("form[data-action=decline]").count() == 0  # a human review is decided by its own review, not declined
    pg.check("input[name=outcome][value=upheld]")
    pg.get_by_role("button", name="提交复核意见", exact=True).click()  # no opinion: refused next to the field
    alert = _alert(pg, "form[data-action=hr-review]")
    assert alert.get_attribute("data-field") == "opinion" and "审查意见不能为空" in alert.inner_text()
    pg.fill("#hr-opinion", "纳税信用等级 D，维持原决定")
    pg.get_by_role("button", name="提交复核意见", exact=True).click()
    pg.wait_for_url("**done=hr_review")
    pg.get_by_role("button", name="确认复核结论", exact=True).click()  # the reviewer may not also confirm
    assert _alert(pg, "form[data-action=hr-decide]").get_attribute("data-rule") == "maker_checker.reviewer"
    console.shot("application-human-review")
    console.log_out()
    console.log_in("approver-lucheng")
    pg.goto(f"{console.base}/console/applications/{d.application_id}")
    pg.get_by_role("button", name="确认复核结论", exact=True).click()
    pg.wait_for_url("**done=hr_decide")
    assert pg.get_attribute("#app-state", "data-state") == "declined" and pg.get_attribute("#human-review [data-status]", "data-status") == "upheld"
    assert actions.get_application(rt, d.application_id).human_review.status == "upheld"


def test_the_portfolio_dashboard_draws_the_reports_figures_with_local_charts(console, rt_sqlite):
    """Lines signed and drawn in two sub-branches: risk sees the bank, an officer their sub-branch; the charts are drawn
    by the ECharts that sandu serves (the fixture fails on any request beyond 127.0.0.1)."""
    from servicing_support import D0, draw, open_line

    from sandu.analytics import actions as analytics
    from sandu.domain.money import FEN_PER_WAN as WAN

    rt, pg = rt_sqlite, console.page
    for row, product, amount in ((S2, "jingying_kuaidai", 300), (STORY_ROWS[2], "keji_xinyong", 200)):
        draw(rt, open_line(rt, row, product), amount * WAN, on=D0)
    report = analytics.portfolio_report(rt, None)
    console.log_in("risk")
    pg.goto(f"{console.base}/console/dashboard")
    pg.wait_for_selector("body[data-charts='4']")
    assert int(pg.get_attribute("#principal", "data-fen")) == report.principal_fen == 500 * WAN
    assert int(pg.get_attribute("#tech", "data-fen")) == report.tech_principal_fen == 200 * WAN and pg.inner_text("#tech-share") == "40.00%"
    assert pg.locator("#chart-branch canvas").count() == 1 and pg.locator("#chart-classes canvas").count() == 1
    assert int(pg.get_attribute("#ecl", "data-fen")) == report.expected_loss["ecl_fen"] > 0
    console.shot("dashboard")
    console.shot("dashboard", {"width": 360, "height": 800})
    console.log_out()
    console.log_in("officer-yongjia")
    pg.goto(f"{console.base}/console/dashboard")
    pg.wait_for_selector("body[data-charts='4']")
    assert int(pg.get_attribute("#principal", "data-fen")) == 300 * WAN and "永嘉" in pg.inner_text("h1")
    pg.goto(f"{console.base}/console/dashboard?as_of=2026-13-01")
    assert "as_of" in (pg.get_attribute("[role=alert]", "data-field") or "") or "日期" in pg.inner_text("main")
