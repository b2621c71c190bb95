"""The applicant's pages in Simplified Chinese (default) or English, and every error said in the page's language.

Errors come from the services in English with the field they concern (`SanduError.field`); here each is
said again in Chinese next to its input, naming what is allowed — "统一社会信用代码第18位校验码应为 B" —
by the pattern of its reason. A reason no pattern knows is shown with the field's Chinese name and the
reason as it was (a new validation then shows up in the tests of the forms, which check every field).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sandu.domain.errors import SanduError

LANGUAGES = ("zh", "en")
LANG_COOKIE = "sandu_lang"

FIELD_ZH = {
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "requested_wan": "期望额度",
    "scopes": "授权范围",
    "consent_id": "授权范围",
    "bureau_authorization": "征信查询授权书",
    "username": "用户名",
    "password": "密码",
    "resident_id": "身份证号",
    "amount_wan": "金额",
    "amount_fen": "金额",
    "reason": "理由",
    "product": "产品",
    "decision_id": "测额",
    "line_id": "额度",
    "on_date": "日期",
    "from": "起始日",
    "to": "截止日",
}

_SOURCE_ZH = {"tax": "税务", "credit_bureau": "征信", "invoices": "发票", "social_insurance": "社保", "utilities": "水电", "ip": "知识产权",
              "bank_flows": "银行流水", "collateral": "抵押物"}


def _field(exc: SanduError) -> str:
    return FIELD_ZH.get(exc.field or "", exc.field or "输入")


# (field pattern, reason pattern, Chinese): the reason's groups fill {1}, {2} …; {f} is the field's Chinese name
_RULES: list[tuple[str, str, str | Callable[[re.Match[str], str], str]]] = [
    (r"uscc|resident_id", r"check character is '(.)', expected '(.)'", "{f}第18位校验码应为 {2}（填写的是 {1}），请核对"),
    (r"uscc|resident_id", r"must be (\d+) characters, got (\d+)", "{f}应为 {1} 位，您填写了 {2} 位"),
    (r"uscc|resident_id", r"character '(.)' at position (\d+) is lowercase", "{f}第{2}位“{1}”应为大写字母"),
    (r"uscc", r"character '(.)' at position (\d+) is not allowed", "{f}第{2}位不能是“{1}”：只用数字和大写字母，不用 I、O、Z、S、V"),
    (r"resident_id", r"character '(.)' at position (\d+) is not allowed", "{f}第{2}位不能是“{1}”：前17位为数字，第18位为数字或 X"),
    (r"resident_id", r"check character must be uppercase 'X'", "{f}第18位校验码应为大写 X"),
    (r"resident_id", r"birth date .* is not a real calendar date", "{f}第7–14位不是有效的出生日期"),
    (r"resident_id", r"birth date .* after today", "{f}的出生日期晚于今天，请核对"),
    (r"resident_id", r"birth year (\d+) is outside", "{f}的出生年份 {1} 不在有效范围内"),
    (r"resident_id", r"address code", "{f}前两位不是有效的省级行政区划代码"),
    (r"uscc", r"region|department|organisation code", "{f}的登记管理部门、行政区划或组织机构代码无效，请核对"),
    (r".*", r"must not be empty|must be text, got ''|got ''", "请填写{f}"),
    (r".*", r"has (\d+) characters, more than (\d+)", "{f}最多 {2} 个字，您填写了 {1} 个"),
    (r".*", r"contains .* at position (\d+)", "{f}第{1}个字符不是可显示的文字，请删除"),
    (r"password", r"has (\d+) characters, fewer than (\d+)", "{f}至少 {2} 位，您填写了 {1} 位"),
    (r"password", r"is not your login password", "{f}不正确，请输入您的登录密码"),
    (r"username", r"is taken", "该{f}已被使用，请换一个"),
    (r"username", r"got ", "{f}为 3–32 位小写字母、数字、点、下划线或连字符"),
    (r"requested_wan|amount_wan", r"fractional fen|fraction smaller than 1 fen", "{f}最小单位为分（万元最多 6 位小数）"),
    (r"requested_wan|amount_wan", r"plain decimal number|thousands separators|whitespace|too long|too large",
     "{f}请填写数字（单位：万元），如 300 或 12.5，不加逗号和空格"),
    (r"requested_wan|amount_wan|amount_fen|requested_fen", r"must be (at least|greater|positive|more than)|≥ 1|1\.\.|got 0|got -",
     "{f}须大于 0"),
    (r"amount_fen|amount_wan", r"exceeds|available|more than the line|limit", "{f}超过可用额度"),
    (r"scopes|consent_id", r"does not cover source '(\w+)'",
     lambda m, f: f"测额须授权查询{_SOURCE_ZH.get(m.group(1), m.group(1))}数据，请勾选"),
    (r"bureau_authorization", r"own authorization", "查询征信须单独签署《征信查询授权书》，请勾选同意"),
    (r"bureau_authorization", r"scopes do not include", "已签署征信授权书，请同时勾选“征信”数据"),
    (r"reason", r".*", "请填写申请复核的理由（最多 1000 字）"),
]


def zh_message(exc: SanduError) -> str:
    """The error in Chinese, naming the field and what is allowed."""
    field = exc.field or ""
    reason = getattr(exc, "reason", None) or str(exc)
    if exc.code == "not_authenticated":
        return "用户名或密码错误，或登录已过期，请重新登录" if "locked" not in reason else "登录失败次数过多，账户已暂时锁定，请稍后再试"
    if exc.code == "not_permitted":
        rule = getattr(exc, "rule", None) or ""
        return {"web.csrf": "页面已过期，请刷新后重试", "web.same_origin": "请从本站页面提交",
                "origination.sign.legal_rep": "只有法定代表人本人可以签约"}.get(rule, f"您无权进行此操作（{rule or exc.code}）")
    if exc.code == "too_many_requests":
        return "操作过于频繁，请稍后再试"
    for field_pattern, reason_pattern, text in _RULES:
        if not re.fullmatch(field_pattern, field):
            continue
        m = re.search(reason_pattern, reason)
        if m is None:
            continue
        if callable(text):
            return text(m, _field(exc))
        out = text.replace("{f}", _field(exc))
        for k, group in enumerate(m.groups(), start=1):
            out = out.replace(f"{{{k}}}", group or "")
        return out
    return f"{_field(exc)}：{reason}"


def message(exc: SanduError, lang: str) -> str:
    return zh_message(exc) if lang == "zh" else str(exc)


def language(cookie: str | None) -> str:
    return cookie if cookie in LANGUAGES else "zh"


TEXT: dict[str, tuple[str, str]] = {  # key → (zh, en)
    "brand_tag": ("额度 · 速度 · 力度", "limit · speed · price"),
    "logout": ("退出", "Log out"),
    "nav_home": ("我的额度", "My credit"),
    "nav_apply": ("在线测额", "Apply"),
    "footer": ("年化利率按单利、365天/年计算，已包含全部利息和费用。数据仅用于本次授信测算。",
               "Annualized rates are simple, on a 365-day year, and include all interest and fees. Data is used only for this credit assessment."),
    "home_title": ("我的额度", "My credit"),
    "no_lines": ("您还没有签约的额度。", "You have no signed credit line yet."),
    "apply_now": ("去测额", "Apply now"),
    "available": ("可用额度", "Available"),
    "limit": ("授信额度", "Limit"),
    "drawn": ("已用（本金）", "Drawn (principal)"),
    "next_due": ("下次应还", "Next due"),
    "rate": ("合同利率", "Contract rate"),
    "apr": ("年化利率", "Annualized rate"),
    "expires": ("到期日", "Expires"),
    "draw": ("借款", "Borrow"),
    "repay": ("还款", "Repay"),
    "amount_wan": ("金额（万元）", "Amount (10,000 yuan)"),
    "password": ("登录密码（确认本人操作）", "Password (to confirm it is you)"),
    "confirm": ("确认", "Confirm"),
    "back": ("返回", "Back"),
    "capital": ("大写金额", "Amount in Chinese capitals"),
    "statement": ("账单与还款计划", "Statement and schedule"),
    "sign": ("签约", "Sign"),
    "review": ("申请人工复核", "Ask for human review"),
}


def t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en
