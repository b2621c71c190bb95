"""The applicant page in a real headless Chromium: apply on the phone, see the limit."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import TEST_PASSWORD

from sandu.simulate.stories import STORY_ROWS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
pytestmark = pytest.mark.browser


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
        yield pg
        browser.close()


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
    assert "check character" in alert.inner_text()
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
