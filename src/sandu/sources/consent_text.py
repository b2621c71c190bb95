"""What each scope of a consent means, in plain words, and the exact text a signer agrees to.

Pure data and pure functions. For every data source of `sandu.sources.catalog`, a plain-Chinese
explanation — 读取什么 (what is read), 用于什么 (what for), 保存多久 (how long it is kept) — and its
English equivalent, used only when the signer chose English.

`render_consent` turns a versioned template, the enterprise, the scopes, the purpose and the
validity into one text; `render_bureau_authorization` does the same for the separate credit-bureau
authorization (征信授权书). The same inputs always give the same characters, so the sha256 stored
with a consent proves which wording was agreed to, and the text kept beside it reproduces it.
A changed wording is a new `TEXT_VERSION`; texts of older versions stay stored, never re-rendered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sandu.sources.catalog import ALL_SOURCES

TEXT_VERSION = "consent-text@2026.2"  # 2026.2: raw data kept at most RAW_RETENTION_MAX_DAYS (2026.1 said not kept)
LANGUAGES = ("zh", "en")
BUREAU_SOURCE = "credit_bureau"  # the scope that needs its own authorization (征信授权书) in the same flow
PROFILE_RETENTION_YEARS = 5  # the profile snapshot a decision rests on is kept with the credit file
# The longest a source's raw payload may be kept after its read: the text promises it, and the runtime
# refuses a retention setting (SANDU_SOURCES_RETENTION_DAYS / SANDU_SOURCE_RETENTION_DAYS) beyond it.
RAW_RETENTION_MAX_DAYS = 90


@dataclass(frozen=True)
class ScopeText:
    title: str
    what: str  # 读取什么
    purpose: str  # 用于什么
    retention: str  # 保存多久


_KEEP_ZH = (f"原始数据只用于本次授权的用途，自读取之日起最长保存{RAW_RETENTION_MAX_DAYS}天后删除；测算用到的数据摘要随授信决定保存"
            f"{PROFILE_RETENTION_YEARS}年，以便复核和您申请人工复查")
_KEEP_EN = (f"the raw data is used for the purpose of this authorization only and deleted at most {RAW_RETENTION_MAX_DAYS} days after "
            f"it was read; the summary the decision rests on is kept with the decision for {PROFILE_RETENTION_YEARS} years, for review "
            f"and for a human re-examination you may ask for")

SCOPE_TEXTS: dict[str, dict[str, ScopeText]] = {
    "tax": {
        "zh": ScopeText("税务数据", "近三年的营业收入、增值税、企业所得税、研发费用和纳税信用等级",
                        "判断经营规模和纳税情况，按纳税额测算经营快贷额度，评价研发投入", _KEEP_ZH),
        "en": ScopeText("Tax records", "revenue, VAT, corporate income tax, R&D expense and tax credit grade of the last three years",
                        "to judge the size of the business and its tax record, size the quick-loan limit on tax paid, and rate R&D spending",
                        _KEEP_EN),
    },
    "invoices": {
        "zh": ScopeText("发票数据", "近12个月开具的销售发票（张数、金额、客户集中度）",
                        "核实销售收入是否真实、是否稳定", _KEEP_ZH),
        "en": ScopeText("Invoices", "sales invoices issued in the last 12 months (count, amount, customer concentration)",
                        "to check that sales are real and steady", _KEEP_EN),
    },
    "social_insurance": {
        "zh": ScopeText("社保数据", "参保人数、科技人员人数、是否欠缴社保",
                        "了解用工规模和科技人员占比（科创评价），发现欠缴风险", _KEEP_ZH),
        "en": ScopeText("Social insurance", "number of insured staff, technical staff, any arrears",
                        "to see the workforce and the share of technical staff (tech evaluation), and spot arrears", _KEEP_EN),
    },
    "utilities": {
        "zh": ScopeText("水电数据", "近12个月用电量和是否欠缴水电费",
                        "佐证生产经营是否正常开展", _KEEP_ZH),
        "en": ScopeText("Utilities", "electricity use over the last 12 months and any unpaid bills",
                        "to confirm that production is running", _KEEP_EN),
    },
    "ip": {
        "zh": ScopeText("知识产权与资质", "专利、软件著作权、高新技术企业和专精特新等资质",
                        "评价科技实力（科创评价），科技实力强的企业可获得更高额度和更低利率", _KEEP_ZH),
        "en": ScopeText("Intellectual property and certifications", "patents, software copyrights, high-tech and 'specialised and new' certifications",
                        "to rate the technology strength (tech evaluation): strong firms get larger limits and lower prices", _KEEP_EN),
    },
    "credit_bureau": {
        "zh": ScopeText("征信报告", "中国人民银行征信中心的企业信用报告：贷款、对外担保、逾期记录和查询记录",
                        "评估信用风险和已有负债；须另行签署征信查询授权书", _KEEP_ZH),
        "en": ScopeText("Credit bureau report", "the enterprise credit report of the PBoC Credit Reference Center: loans, guarantees, "
                        "overdue history and past queries",
                        "to assess credit risk and existing debt; needs its own credit-bureau authorization", _KEEP_EN),
    },
    "bank_flows": {
        "zh": ScopeText("银行流水", "近12个月账户的资金流入和流出",
                        "核实经营现金流和还款能力", _KEEP_ZH),
        "en": ScopeText("Bank flows", "inflows and outflows of the accounts over the last 12 months",
                        "to check operating cash flow and the ability to repay", _KEEP_EN),
    },
    "collateral": {
        "zh": ScopeText("抵押物信息", "登记的房产土地、评估价值和已设定的抵押债务",
                        "计算抵押额度和余值额度（余值+信用、抵押+信用）", _KEEP_ZH),
        "en": ScopeText("Collateral", "registered property and land, appraised values and debt already secured on them",
                        "to size the secured and residual-value limits", _KEEP_EN),
    },
}
assert set(SCOPE_TEXTS) == set(ALL_SOURCES) and all(set(t) == set(LANGUAGES) for t in SCOPE_TEXTS.values()), "every source explained in every language"

PURPOSE_TEXTS: dict[str, dict[str, str]] = {
    "credit_measurement": {"zh": "为本企业测算、审批授信额度（测额）", "en": "measuring and approving a credit limit for the enterprise"},
}

_LABELS = {
    "zh": {"what": "读取什么", "purpose": "用于什么", "retention": "保存多久"},
    "en": {"what": "What is read", "purpose": "What for", "retention": "How long it is kept"},
}


def scope_text(source: str, language: str = "zh") -> ScopeText:
    return SCOPE_TEXTS[source][language]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check(scopes: list[str] | tuple[str, ...], purpose: str, language: str) -> None:
    if language not in LANGUAGES or purpose not in PURPOSE_TEXTS or not set(scopes) <= set(SCOPE_TEXTS):
        raise ValueError(f"cannot render a consent text for language {language!r}, purpose {purpose!r}, scopes {list(scopes)!r}")


def render_consent(*, enterprise_name: str, uscc: str, scopes: list[str] | tuple[str, ...], purpose: str, valid_days: int,
                   language: str = "zh", version: str = TEXT_VERSION) -> str:
    """The consent text of `version` (only the current one renders): the same inputs, the same characters.
    Scopes come in the catalog's order, whatever order they were listed in."""
    if version != TEXT_VERSION:
        raise ValueError(f"consent text version {version!r} is not rendered any more; its texts are kept in the store")
    _check(scopes, purpose, language)
    ordered = [s for s in ALL_SOURCES if s in scopes]
    labels = _LABELS[language]
    if language == "zh":
        lines = [
            f"数据查询授权书（{version}）",
            f"授权企业：{enterprise_name}（统一社会信用代码：{uscc}）",
            "本人作为该企业的法定代表人，授权本行查询下列数据：",
        ]
    else:
        lines = [
            f"Authorization to read data ({version})",
            f"Enterprise: {enterprise_name} (unified social credit code {uscc})",
            "As the enterprise's legal representative, I authorize the bank to read the following data:",
        ]
    for n, source in enumerate(ordered, start=1):
        t = SCOPE_TEXTS[source][language]
        lines += [f"{n}. {t.title}", f"   {labels['what']}：{t.what}" if language == "zh" else f"   {labels['what']}: {t.what}",
                  f"   {labels['purpose']}：{t.purpose}" if language == "zh" else f"   {labels['purpose']}: {t.purpose}",
                  f"   {labels['retention']}：{t.retention}" if language == "zh" else f"   {labels['retention']}: {t.retention}"]
    purpose_text = PURPOSE_TEXTS[purpose][language]
    if language == "zh":
        lines += [
            f"用途：{purpose_text}。不用于其他目的。",
            f"有效期：自签署之日起{valid_days}天。",
            "本人可随时撤回本授权；撤回后本行立即停止查询，已查询的记录可随时查看。",
        ]
    else:
        lines += [
            f"Purpose: {purpose_text}; for no other purpose.",
            f"Valid for {valid_days} days from signing.",
            "I may revoke this authorization at any time; the bank then stops reading at once, and the reads made remain open to me.",
        ]
    return "\n".join(lines) + "\n"


def render_bureau_authorization(*, enterprise_name: str, uscc: str, purpose: str, valid_days: int, language: str = "zh",
                                version: str = TEXT_VERSION) -> str:
    """The separate credit-bureau authorization (征信授权书) signed in the same flow."""
    if version != TEXT_VERSION:
        raise ValueError(f"consent text version {version!r} is not rendered any more; its texts are kept in the store")
    _check([BUREAU_SOURCE], purpose, language)
    purpose_text = PURPOSE_TEXTS[purpose][language]
    if language == "zh":
        lines = [
            f"征信查询授权书（{version}）",
            f"授权企业：{enterprise_name}（统一社会信用代码：{uscc}）",
            "本人作为该企业的法定代表人，单独授权本行向中国人民银行征信中心查询本企业的信用报告，",
            f"仅用于：{purpose_text}。",
            f"有效期：自签署之日起{valid_days}天；本人可随时撤回，撤回后本行立即停止查询。",
        ]
    else:
        lines = [
            f"Credit bureau authorization ({version})",
            f"Enterprise: {enterprise_name} (unified social credit code {uscc})",
            "As the enterprise's legal representative, I separately authorize the bank to obtain the enterprise's credit report "
            "from the PBoC Credit Reference Center,",
            f"only for: {purpose_text}.",
            f"Valid for {valid_days} days from signing; I may revoke it at any time, and the bank then stops querying at once.",
        ]
    return "\n".join(lines) + "\n"
