"""The applicant page in a real headless Chromium: apply on the phone, see the limit."""

from __future__ import annotations

import os
import re
import shutil
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import TEST_PASSWORD

from sandu.domain.money import FEN_PER_WAN as WAN
from sandu.simulate.stories import STORY_ROWS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
pytestmark = pytest.mark.browser


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web"
PHONE, DESK = {"width": 390, "height": 844}, {"width": 1440, "height": 900}


@pytest.fixture
def page():
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed and CI=true requires the browser tests (apt-get install chromium)")
        pytest.skip("chromium not installed: skipping the browser test (apt-get install chromium fonts-noto-cjk)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        outside: list[str] = []

        def only_loopback(route):  # no page may reach beyond this machine: a CDN, a font, an analytics beacon
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        pg.route("**/*", only_loopback)
        yield pg
        browser.close()
        assert outside == [], f"requests left 127.0.0.1: {outside}"


def _log_in(page, live_server, username: str = "rep-s2") -> None:
    page.goto(f"{live_server}/app")
    page.wait_for_url("**/app/login")  # logged out: the app asks who you are
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/app")


def test_applicant_measures_a_limit_on_the_phone(page, live_server, tmp_path):
    s2 = STORY_ROWS[1]  # 永嘉 valve maker, no account at the bank
    _log_in(page, live_server)
    assert "在线测额" in page.inner_text("h1")
    assert s2["legal_rep_id"][-4:] in page.inner_text("main")  # the legal representative is the one logged in (masked)
    page.fill("input[name=uscc]", s2["uscc"])
    page.fill("input[name=name]", s2["name"])
    assert "读取什么" in page.inner_text("[data-scope=tax]")  # each scope explained before signing
    page.click("form.card button[type=submit]")  # the credit-bureau authorization (征信授权书) is not ticked in advance
    assert page.locator("[role=alert]").get_attribute("data-field") == "bureau_authorization"
    page.check("input[name=bureau_authorization]")
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/app/decisions/*")
    assert page.inner_text("#limit") == "416.00万"
    offer = page.locator("[data-product=jingying_kuaidai]")
    assert "经营快贷" in offer.inner_text()
    assert "年化利率" in offer.inner_text()
    page.screenshot(path=str(tmp_path / "decision.png"), full_page=True)


def test_malformed_uscc_shows_the_field_and_reason(page, live_server):
    s2 = STORY_ROWS[1]
    _log_in(page, live_server)
    page.fill("input[name=uscc]", s2["uscc"][:-1] + ("0" if s2["uscc"][-1] != "0" else "1"))
    page.fill("input[name=name]", s2["name"])
    page.click("form.card button[type=submit]")
    alert = page.locator("[role=alert]")
    assert alert.get_attribute("data-field") == "uscc"
    assert alert.inner_text() == f"统一社会信用代码第18位校验码应为 {s2['uscc'][-1]}（填写的是 {page.input_value('input[name=uscc]')[-1]}），请核对"
    assert page.input_value("input[name=uscc]").startswith(s2["uscc"][:17])  # what was typed is kept


def test_a_new_applicant_signs_up_alone_and_a_foreign_form_is_refused(page, live_server):
    from datetime import date

    from sandu.domain.ids import make_resident_id

    person = make_resident_id("330302", date(1985, 6, 1), "017")
    page.goto(f"{live_server}/app/signup")
    page.fill("input[name=username]", "new-owner")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.fill("input[name=resident_id]", person[:-1] + ("0" if person[-1] != "0" else "1"))
    page.click("form.card button[type=submit]")
    assert page.locator("[role=alert]").get_attribute("data-field") == "resident_id"  # the server checks the check character
    page.fill("input[name=password]", TEST_PASSWORD)
    page.fill("input[name=resident_id]", person)
    page.click("form.card button[type=submit]")
    page.wait_for_url(f"{live_server}/app")
    assert "new-owner" in page.inner_text("header")
    # The session cookie is out of reach of scripts, and a form from another site is refused.
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sandu_session"]["httpOnly"] and cookies["sandu_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""
    status = page.evaluate("""async () => (await fetch('/app/measure', {method: 'POST', body: new URLSearchParams({uscc: 'x', csrf: 'forged'})})).status""")
    assert status == 403


def _shot(page, name: str) -> None:
    """The page at phone and desk width, under test-artifacts/web/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desk", DESK)):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def _fen(page, selector: str) -> int:
    return int(page.get_attribute(selector, "data-fen"))


def test_story_s2_from_registration_to_the_first_repayment_in_the_applicant_pages(page, live_server, rt_sqlite):
    """永嘉's valve maker, no account at the bank: authorize and measure, sign, borrow 300万 (confirmed in capitals), repay
    100万 — every amount on the pages equal to the ledger's."""
    from sandu.servicing import actions as servicing

    rt, s2 = rt_sqlite, STORY_ROWS[1]
    _log_in(page, live_server)
    _shot(page, "apply")
    page.fill("input[name=uscc]", s2["uscc"])
    page.fill("input[name=name]", s2["name"])
    page.check("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    page.wait_for_url(re.compile(r".*/app/decisions/[0-9a-f-]{36}$"))
    assert page.inner_text("#limit") == "416.00万"
    _shot(page, "decision")
    offer = page.locator("[data-product=jingying_kuaidai]")
    assert "肆佰壹拾陆万元整" in offer.inner_text()
    offer.locator("input[name=password]").fill(TEST_PASSWORD)
    offer.get_by_role("button", name="签约").click()
    page.wait_for_url(re.compile(r".*/app/lines/\d+\?signed=1$"))
    line_id = int(page.get_attribute("[data-line]", "data-line"))
    line = servicing.get_line(rt, line_id)
    assert _fen(page, "#available") == line.available_fen == line.limit_fen == 416 * WAN and _fen(page, "#drawn") == 0
    _shot(page, "line-signed")

    page.fill("#draw-amount", "300")
    page.get_by_role("button", name="借款").click()
    assert page.inner_text("#capital") == "叁佰万元整" and _fen(page, "#confirm-amount") == 300 * WAN
    _shot(page, "draw-confirm")
    page.fill("input[name=password]", TEST_PASSWORD)
    form = {n: page.input_value(f"form.card input[name={n}]") for n in ("csrf", "amount_fen", "key", "password")}
    page.get_by_role("button", name="确认借款").click()
    page.wait_for_url(re.compile(r".*/app/lines/\d+\?done=draw$"))
    line = servicing.get_line(rt, line_id)
    assert _fen(page, "#available") == line.available_fen == 116 * WAN and _fen(page, "#drawn") == line.drawn_principal_fen == 300 * WAN
    status = page.evaluate("""async ([url, form]) => (await fetch(url, {method: 'POST', body: new URLSearchParams(form)})).status""",
                           [f"/app/lines/{line_id}/draw", form])  # the confirmation sent twice borrows once: its key was used
    assert status == 200 and servicing.get_line(rt, line_id).drawn_principal_fen == 300 * WAN

    page.goto(f"{live_server}/app/lines/{line_id}")
    page.fill("#repay-amount", "100")
    page.get_by_role("button", name="还款").click()
    assert page.inner_text("#capital") == "壹佰万元整"
    page.get_by_role("button", name="确认还款").click()
    page.wait_for_url(re.compile(r".*/app/lines/\d+\?done=repay$"))
    line = servicing.get_line(rt, line_id)
    assert _fen(page, "#drawn") == line.drawn_principal_fen == 200 * WAN and _fen(page, "#available") == line.available_fen == 216 * WAN
    kinds = [page.get_attribute(f"#statement tbody tr:nth-child({k})", "data-kind") for k in (1, 2)]
    assert kinds == ["draw", "repayment"]
    _shot(page, "line-repaid")
    page.goto(f"{live_server}/app/home")
    assert page.get_attribute(f"[data-line='{line_id}'] [data-available]", "data-available") == str(216 * WAN)
    _shot(page, "home")


CJK = re.compile(r"[\u4e00-\u9fff]")


def _field_error(page, field: str) -> str:
    text = page.inner_text(f".field-error[data-field={field}]")
    assert CJK.search(text) and not re.search(r"[A-Za-z]{4,}", text.replace("USCC", "")), text  # Chinese, not an English sentence
    return text


def test_every_field_error_of_the_applicant_forms_is_in_chinese_next_to_its_field(page, live_server, rt_sqlite):
    from sandu.domain.ids import make_resident_id

    s2, person = STORY_ROWS[1], make_resident_id("330302", date(1985, 6, 1), "019")
    page.goto(f"{live_server}/app/signup")
    page.fill("input[name=username]", "rep-s2")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.fill("input[name=resident_id]", person)
    page.get_by_role("button", name="注册").click()
    assert "已被使用" in _field_error(page, "username")
    page.fill("input[name=username]", "new-owner-2")
    page.fill("input[name=password]", "short")
    page.get_by_role("button", name="注册").click()
    assert _field_error(page, "password") == "密码至少 12 位，您填写了 5 位"
    page.fill("input[name=password]", TEST_PASSWORD)
    page.fill("input[name=resident_id]", person[:17])
    page.get_by_role("button", name="注册").click()
    assert _field_error(page, "resident_id") == "身份证号应为 18 位，您填写了 17 位"
    _log_in(page, live_server)
    cases = [
        ({"uscc": s2["uscc"][:-1] + "Z"}, "uscc", "第18位"),
        ({"uscc": s2["uscc"].lower()}, "uscc", "大写字母"),
        ({"name": ""}, "name", "请填写企业名称"),
        ({"requested_wan": "三百"}, "requested_wan", "请填写数字"),
        ({"requested_wan": "0.0000001"}, "requested_wan", "最小单位为分"),
    ]
    for change, field, words in cases:
        page.goto(f"{live_server}/app")
        values = {"uscc": s2["uscc"], "name": s2["name"], "requested_wan": "", **change}
        for name, value in values.items():
            page.fill(f"input[name={name}]", value)
        page.check("input[name=bureau_authorization]")
        page.get_by_role("button", name="授权并测额").click()
        assert words in _field_error(page, field), (change, page.inner_text("main")[:300])
        assert page.get_attribute(f"input[name={field}]", "aria-invalid") == "true"
    page.goto(f"{live_server}/app")
    page.fill("input[name=uscc]", s2["uscc"])
    page.fill("input[name=name]", s2["name"])
    page.uncheck("input[name=scopes][value=credit_bureau]")
    page.check("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    field = page.get_attribute(".field-error", "data-field")
    assert field in ("scopes", "bureau_authorization") and "征信" in _field_error(page, field)
    page.check("input[name=scopes][value=credit_bureau]")
    page.uncheck("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    assert "征信查询授权书" in _field_error(page, "bureau_authorization")
    _shot(page, "apply-error")
    page.check("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    offer = page.locator("[data-product=jingying_kuaidai]")
    offer.locator("input[name=password]").fill("not my password")
    offer.get_by_role("button", name="签约").click()
    assert "密码" in _field_error(page, "password")
    offer = page.locator("[data-product=jingying_kuaidai]")
    offer.locator("input[name=password]").fill(TEST_PASSWORD)
    offer.get_by_role("button", name="签约").click()
    page.wait_for_url(re.compile(r".*/app/lines/\d+\?signed=1$"))
    for amount, words in (("0", "须大于 0"), ("abc", "请填写数字"), ("417", "超过可用额度"), ("1.0000001", "最小单位为分")):
        page.fill("#draw-amount", amount)
        page.get_by_role("button", name="借款").click()
        assert words in _field_error(page, "amount_wan"), amount
    page.fill("#repay-amount", "-5")
    page.get_by_role("button", name="还款").click()
    assert _field_error(page, "amount_wan")
    page.fill("#draw-amount", "10")
    page.get_by_role("button", name="借款").click()
    page.fill("input[name=password]", "wrong password")
    page.get_by_role("button", name="确认借款").click()
    assert "密码" in _field_error(page, "password")
    _shot(page, "draw-error")


def test_the_language_is_selectable_and_remembered(page, live_server):
    _log_in(page, live_server)
    page.get_by_role("link", name="English").click()
    assert page.inner_text("footer").startswith("Annualized rates") and page.get_attribute("html", "lang") == "en"
    assert page.inner_text("h1") == "Apply online" and "What is read" in page.inner_text("[data-scope=tax]")
    s2 = STORY_ROWS[1]
    page.fill("input[name=uscc]", s2["uscc"])
    page.fill("input[name=name]", s2["name"])
    page.get_by_role("button", name="Authorize and measure").click()
    assert "credit bureau" in page.inner_text(".field-error[data-field=bureau_authorization]")  # the error in the page's language
    page.goto(f"{live_server}/app/home")
    assert page.inner_text("h1") == "My credit"
    page.get_by_role("link", name="中文").click()
    assert page.inner_text("h1") == "我的额度"


def test_a_declined_applicant_asks_for_human_review_and_sees_its_status(page, live_server, rt_sqlite):
    from conftest import known_to_decline

    from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
    from sandu.security import actions as security

    body = "66666666"
    uscc, rep = make_uscc("9", "1", "330302", body + org_code_check_char(body)), make_resident_id("330302", date(1981, 3, 3), "246")
    known_to_decline(rt_sqlite, uscc, "温州复核测试有限公司", rep)
    security.create_user(rt_sqlite, None, username="declined-rep", password=TEST_PASSWORD, role="applicant", resident_id=rep)
    _log_in(page, live_server, "declined-rep")
    page.fill("input[name=uscc]", uscc)
    page.fill("input[name=name]", "温州复核测试有限公司")
    page.check("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    assert page.get_attribute("[data-outcome]", "data-outcome") == "decline"
    page.get_by_role("button", name="申请人工复核").click()
    assert "理由" in _field_error(page, "reason")
    page.fill("textarea[name=reason]", "我司上月新获两项发明专利，订单增长，请人工复核")
    page.get_by_role("button", name="申请人工复核").click()
    assert page.get_attribute("#review-status", "data-status") == "requested" and "等待客户经理复核" in page.inner_text("#review-status")
    _shot(page, "human-review")


def test_a_limit_below_the_request_says_what_would_raise_it(page, live_server):
    s4 = STORY_ROWS[3]  # 龙湾 medical devices: 网贷通 + 科创信用额度; asks for more than the policy gives
    _log_in(page, live_server, "rep-s4")
    page.fill("input[name=uscc]", s4["uscc"])
    page.fill("input[name=name]", s4["name"])
    page.fill("input[name=requested_wan]", "3000")
    page.check("input[name=bureau_authorization]")
    page.get_by_role("button", name="授权并测额").click()
    page.wait_for_url(re.compile(r".*/app/decisions/[0-9a-f-]{36}$"))
    items = page.locator("#raise li")
    assert items.count() >= 1 and all(t.startswith("若") and "额度可提高至" in t for t in items.all_inner_texts())
    _shot(page, "decision-raise")
