"""Tech-strength evaluation (科创评价): profile features + a versioned config → an explained evaluation.

Pure: `evaluate_tech(features, config)` reads the profile's feature dict and the
config (`sandu.scoring.tech_config`, default ``scoring/models/tech_v1.toml``) and
returns a frozen `TechEvaluation`. Every weight, threshold and grade band is in
the config; a changed config changes the scores without a code change, and each
decision records the config's ``name@version`` and sha256 (replay refuses another).

What it evaluates:

1. **科技型中小企业 (MOST)**, by the official thresholds: tech-staff ratio (20),
   R&D / sales (50), IP (30: Class-I, else Class-II count); qualified when the size
   limits hold (staff, sales, assets) and either a listed certificate passes it
   automatically or the points reach the pass mark with the tech-staff points
   above 0. `most_pass` — what the policy's tech line needs — is this qualification.
2. **创新型中小企业 (MIIT)**: innovation (IP + R&D / revenue), growth (revenue
   growth + debt ratio), specialisation (main product's field + main-business
   share); qualified on a listed certificate, or on the total with each group's minimum.
3. **The bank's view**: invention-patent density and trend, R&D intensity and
   growth, tech-staff ratio, the founder's education, the management's tenure,
   certifications, commercialisation.

The 0–100 score is each official total scaled to its weight plus each bank
indicator's points (the weights add up to 100), rounded half-up to one decimal.
Each qualification carries the rule that decided it, in Chinese and English; the
indicators carry points, maximum and explanation; the three largest contributions
are the strengths, the three largest shortfalls the weaknesses.

**No data is never guessed.** A feature that is absent, None or of the wrong type
scores 0 and is said to be missing ("缺少…数据" / "no data on …"); a size limit
without data is reported as not verified rather than failed. The features read
(absent ones are the place for a later source to supply them):

- from `sandu.sources.profile.build_profile`: ``tech_staff_ratio``, ``headcount``,
  ``rd_ratio``, ``rd_growth``, ``revenue_fen``, ``revenue_growth``,
  ``invention_patents``, ``utility_models``, ``software_copyrights``, ``certifications``;
- not yet supplied by any source: ``total_assets_fen`` (int fen), ``debt_to_assets``
  (资产负债率, ratio), ``high_value_invention_patents`` (int), ``invention_patents_12m_ago``
  (int), ``strategic_emerging_industry`` (bool: main product in the 战略性新兴产业分类),
  ``main_business_share`` (主营业务收入占比, ratio), ``founder_education``
  (doctorate/master/bachelor/college/other), ``management_tenure_years`` (number),
  ``tech_revenue_share`` (revenue share of products on own technology, ratio).

Ratios are compared as `Decimal(str(x))`, never as floats.

**Score → grade happens here and only here** (`TechConfig.grade_of`, bands in the
tech config). The policy bundle's ``tech_grades`` table no longer holds scores: it
gives each grade its limit multiplier and price discount, and the policy receives
the grade in `Scores.tech_grade`. The tech config is the thing that knows what a
score means, so its bands live beside its weights; the policy stays the place for
what a grade earns. The runtime refuses a pair whose grades the bundle does not price.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sandu.domain.money import format_cn
from sandu.scoring.tech_config import EDUCATION_LEVELS, Band, BelowBand, CountBand, TechConfig

MAX_LISTED = 3  # strengths and weaknesses shown
SCORE_PLACES = Decimal("0.1")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Text:
    """The same words in Chinese and English."""

    zh: str
    en: str

    def to_json(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class Indicator:
    """One scored indicator. `value` None: the profile has no data for it (0 points)."""

    key: str
    name: Text
    value: Text | None
    points: Decimal
    max_points: int
    explanation: Text

    @property
    def has_data(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name.to_json(),
            "value": None if self.value is None else self.value.to_json(),
            "has_data": self.has_data,
            "points": _num(self.points),
            "max_points": self.max_points,
            "explanation": self.explanation.to_json(),
        }


@dataclass(frozen=True)
class Qualification:
    """An official qualification: yes/no, its points on the official 0–100 scale, the
    certificate that passed it automatically (if any) and the rule that decided it."""

    passed: bool
    points: int
    automatic: str | None
    rule: Text
    parts: tuple[Indicator, ...]
    not_verified: tuple[str, ...]  # conditions the profile has no data for

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "points": self.points,
            "automatic": self.automatic,
            "rule": self.rule.to_json(),
            "parts": [p.to_json() for p in self.parts],
            "not_verified": list(self.not_verified),
        }


@dataclass(frozen=True)
class TechEvaluation:
    config: str  # name@version of the config
    config_sha256: str
    score: Decimal  # 0–100, one decimal
    grade: str
    most: Qualification  # 科技型中小企业
    innovative: Qualification  # 创新型中小企业
    indicators: tuple[Indicator, ...]  # what the score adds up
    strengths: tuple[Text, ...]  # at most three, largest contribution first
    weaknesses: tuple[Text, ...]  # at most three, largest shortfall first

    @property
    def most_pass(self) -> bool:
        return self.most.passed

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.config,
            "sha256": self.config_sha256,
            "score": str(self.score),
            "grade": self.grade,
            "most_pass": self.most.passed,
            "most": self.most.to_json(),
            "innovative": self.innovative.to_json(),
            "indicators": [i.to_json() for i in self.indicators],
            "strengths": [s.to_json() for s in self.strengths],
            "weaknesses": [w.to_json() for w in self.weaknesses],
        }


# -- reading features: anything unexpected is "no data" ----------------------------------------


def _number(f: dict[str, Any], key: str) -> Decimal | None:
    value = f.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _count(f: dict[str, Any], key: str) -> int | None:
    value = f.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _certificates(f: dict[str, Any]) -> frozenset[str] | None:
    certs = f.get("certifications")
    if isinstance(certs, str) or not isinstance(certs, list | tuple):
        return None
    return frozenset(c for c in certs if isinstance(c, str))


def _band(value: Decimal | int | None, bands: Sequence[Band] | Sequence[CountBand]) -> int:
    if value is None:
        return 0
    return next((b.points for b in bands if value >= b.min), 0)


def _below(value: Decimal | None, bands: Sequence[BelowBand]) -> int:
    if value is None:
        return 0
    return next((b.points for b in bands if value < b.below), 0)


# -- words -------------------------------------------------------------------------------------


def _num(d: Decimal | int) -> str:
    """A number without trailing zeros (``4.5``, ``18``)."""
    text = f"{Decimal(d):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pct(d: Decimal) -> str:
    return f"{d * 100:.1f}%"


def _same(text: str) -> Text:
    return Text(text, text)


def _indicator(key: str, name: Text, value: Text | None, points: Decimal | int, max_points: int, rule: Text | None = None) -> Indicator:
    pts = Decimal(points)
    if value is None:
        explanation = Text(f"缺少{name.zh}数据：0/{max_points}", f"no data on {name.en}: 0/{max_points}")
    else:
        explanation = Text(f"{name.zh} {value.zh}：{_num(pts)}/{max_points}", f"{name.en} {value.en}: {_num(pts)}/{max_points}")
        if rule is not None:
            explanation = Text(f"{explanation.zh}（{rule.zh}）", f"{explanation.en} ({rule.en})")
    return Indicator(key, name, value, pts, max_points, explanation)


# -- MOST 科技型中小企业 -------------------------------------------------------------------------

N_STAFF = Text("科技人员占比", "tech-staff ratio")
N_RD_SALES = Text("研发投入占销售收入比", "R&D / sales")
N_IP = Text("知识产权", "intellectual property")


@dataclass(frozen=True)
class _Ip:
    invention: int | None
    class_ii: int | None

    @property
    def known(self) -> bool:
        return self.invention is not None or self.class_ii is not None

    def text(self) -> Text:
        return Text(f"一类 {self.invention if self.invention is not None else '无数据'} 项、二类 {self.class_ii if self.class_ii is not None else '无数据'} 项",
                    f"{self.invention if self.invention is not None else 'n/a'} Class-I, {self.class_ii if self.class_ii is not None else 'n/a'} Class-II")


def _ip(f: dict[str, Any]) -> _Ip:
    utility, software = _count(f, "utility_models"), _count(f, "software_copyrights")
    class_ii = None if utility is None and software is None else (utility or 0) + (software or 0)
    return _Ip(_count(f, "invention_patents"), class_ii)


def _size_checks(f: dict[str, Any], c: TechConfig) -> tuple[list[Text], list[str]]:
    """(limits exceeded, limits without data)."""
    m = c.most
    exceeded: list[Text] = []
    unknown: list[str] = []
    head = _count(f, "headcount")
    if head is None:
        unknown.append("headcount")
    elif head > m.max_headcount:
        exceeded.append(Text(f"职工 {head} 人 > {m.max_headcount} 人", f"staff {head} > {m.max_headcount}"))
    for key, zh, en, limit in (("revenue_fen", "销售收入", "sales", m.max_revenue_fen), ("total_assets_fen", "资产总额", "assets", m.max_total_assets_fen)):
        value = _count(f, key)
        if value is None:
            unknown.append(key)
        elif value > limit:
            exceeded.append(Text(f"{zh} {format_cn(value)} > {format_cn(limit)}", f"{en} {format_cn(value)} > {format_cn(limit)}"))
    return exceeded, unknown


_UNKNOWN_WORDS = {
    "headcount": Text("职工人数", "headcount"),
    "revenue_fen": Text("销售收入", "sales"),
    "total_assets_fen": Text("资产总额", "total assets"),
    "debt_to_assets": Text("资产负债率", "debt ratio"),
    "strategic_emerging_industry": Text("主导产品所属领域", "main product's field"),
    "main_business_share": Text("主营业务收入占比", "main-business share"),
    "revenue_growth": Text("营业收入增长率", "revenue growth"),
}


def _not_verified(keys: Sequence[str]) -> Text | None:
    if not keys:
        return None
    words = [_UNKNOWN_WORDS[k] for k in keys]
    return Text("未核实（缺少数据）：" + "、".join(w.zh for w in words), "not verified (no data): " + ", ".join(w.en for w in words))


def _with_note(rule: Text, note: Text | None) -> Text:
    return rule if note is None else Text(f"{rule.zh}；{note.zh}", f"{rule.en}; {note.en}")


def _automatic(certs: frozenset[str] | None, listed: Sequence[str]) -> str | None:
    return next((c for c in listed if certs is not None and c in certs), None)


def evaluate_most(f: dict[str, Any], c: TechConfig) -> Qualification:
    m = c.most
    staff, rd, ip = _number(f, "tech_staff_ratio"), _number(f, "rd_ratio"), _ip(f)
    staff_pts, rd_pts = _band(staff, m.tech_staff_ratio), _band(rd, m.rd_ratio)
    if ip.invention is not None and ip.invention >= m.class_i_min:
        ip_pts = m.class_i_points
    else:
        ip_pts = _band(ip.class_ii, m.class_ii)
    total = staff_pts + rd_pts + ip_pts
    parts = (
        _indicator("most.tech_staff_ratio", N_STAFF, None if staff is None else _same(_pct(staff)), staff_pts, m.tech_staff_ratio[0].points),
        _indicator("most.rd_ratio", N_RD_SALES, None if rd is None else _same(_pct(rd)), rd_pts, m.rd_ratio[0].points),
        _indicator("most.ip", N_IP, ip.text() if ip.known else None, ip_pts, m.class_i_points),
    )

    def shown(x: Decimal | None) -> str:
        return "—" if x is None else _pct(x)

    sums = Text(f"研发 {shown(rd)} → {rd_pts}，科技人员 {shown(staff)} → {staff_pts}，知识产权 {ip.text().zh} → {ip_pts}，合计 {total}",
                f"R&D {shown(rd)} → {rd_pts}, staff {shown(staff)} → {staff_pts}, IP {ip.text().en} → {ip_pts} = {total}")
    exceeded, unknown = _size_checks(f, c)
    auto = _automatic(_certificates(f), m.automatic_pass)
    if exceeded:
        passed = False
        rule = Text("不符合规模条件：" + "，".join(e.zh for e in exceeded), "size limit exceeded: " + ", ".join(e.en for e in exceeded))
    elif auto is not None:
        passed = True
        rule = Text(f"直接通过：持有{auto}", f"automatic: {auto} certificate")
    elif m.staff_points_required and staff_pts == 0:
        passed = False
        rule = Text(f"{sums.zh}；科技人员指标得分为 0，不符合", f"{sums.en}; tech-staff points are 0, which disqualifies")
    else:
        passed = total >= m.pass_points
        mark = "≥" if passed else "<"
        rule = Text(f"{sums.zh} {mark} {m.pass_points}", f"{sums.en} {mark} {m.pass_points}")
    return Qualification(passed, total, auto if passed else None, _with_note(rule, _not_verified(unknown)), parts, tuple(unknown))


# -- MIIT 创新型中小企业 ------------------------------------------------------------------------

N_INNOV_IP = Text("与主导产品相关的知识产权", "IP of the main product")
N_RD_REVENUE = Text("研发费用占营业收入比", "R&D / revenue")
N_GROWTH = Text("营业收入增长率", "revenue growth")
N_DEBT = Text("资产负债率", "debt ratio")
N_FIELD = Text("主导产品所属领域", "main product's field")
N_MAIN = Text("主营业务收入占比", "main-business share")


def evaluate_innovative(f: dict[str, Any], c: TechConfig) -> Qualification:
    n = c.innovative
    ip, high_value = _ip(f), _count(f, "high_value_invention_patents")
    if high_value is not None and high_value >= 1:
        ip_pts, ip_word = n.ip_high_value_points, Text(f"高价值一类 {high_value} 项", f"{high_value} high-value Class-I")
    elif ip.invention is not None and ip.invention >= 1:
        ip_pts, ip_word = n.ip_class_i_points, Text(f"一类 {ip.invention} 项", f"{ip.invention} Class-I")
    elif ip.class_ii is not None and ip.class_ii >= 1:
        ip_pts, ip_word = n.ip_class_ii_points, Text(f"二类 {ip.class_ii} 项", f"{ip.class_ii} Class-II")
    else:
        ip_pts, ip_word = 0, Text("无", "none")
    ip_known = ip.known or high_value is not None
    rd, growth, debt, main = (_number(f, k) for k in ("rd_ratio", "revenue_growth", "debt_to_assets", "main_business_share"))
    field = f.get("strategic_emerging_industry")
    field = field if isinstance(field, bool) else None
    rd_pts, growth_pts, debt_pts, main_pts = _band(rd, n.rd_ratio), _band(growth, n.revenue_growth), _below(debt, n.debt_ratio), _band(main, n.main_business_share)
    field_pts = 0 if field is None else (n.strategic_emerging_points if field else n.other_field_points)
    field_word = None if field is None else (Text("战略性新兴产业", "strategic emerging industry") if field else Text("其他领域", "another field"))
    parts = (
        _indicator("innovative.ip", N_INNOV_IP, ip_word if ip_known else None, ip_pts, n.ip_high_value_points),
        _indicator("innovative.rd_ratio", N_RD_REVENUE, None if rd is None else _same(_pct(rd)), rd_pts, n.rd_ratio[0].points),
        _indicator("innovative.revenue_growth", N_GROWTH, None if growth is None else _same(_pct(growth)), growth_pts, n.revenue_growth[0].points),
        _indicator("innovative.debt_ratio", N_DEBT, None if debt is None else _same(_pct(debt)), debt_pts, n.debt_ratio[0].points),
        _indicator("innovative.field", N_FIELD, field_word, field_pts, n.strategic_emerging_points),
        _indicator("innovative.main_business_share", N_MAIN, None if main is None else _same(_pct(main)), main_pts, n.main_business_share[0].points),
    )
    unknown = tuple(k for k, v in (("revenue_growth", growth), ("debt_to_assets", debt), ("strategic_emerging_industry", field), ("main_business_share", main)) if v is None)
    groups = ((Text("创新能力", "innovation"), ip_pts + rd_pts, n.min_innovation), (Text("成长性", "growth"), growth_pts + debt_pts, n.min_growth),
              (Text("专业化", "specialisation"), field_pts + main_pts, n.min_specialisation))
    total = sum(g[1] for g in groups)
    checks = [(name, pts, least, pts >= least) for name, pts, least in groups] + [(Text("合计", "total"), total, n.pass_points, total >= n.pass_points)]
    auto = _automatic(_certificates(f), n.automatic_pass)
    if auto is not None:
        passed = True
        rule = Text(f"直接认定：持有{auto}", f"automatic: {auto}")
    else:
        passed = all(ok for *_, ok in checks)
        verdict = Text("符合" if passed else "不符合", "yes" if passed else "no")
        rule = Text("，".join(f"{name.zh} {pts} {'≥' if ok else '<'} {least}" for name, pts, least, ok in checks) + f" → {verdict.zh}",
                    ", ".join(f"{name.en} {pts} {'≥' if ok else '<'} {least}" for name, pts, least, ok in checks) + f" → {verdict.en}")
    return Qualification(passed, total, auto, _with_note(rule, _not_verified(unknown)), parts, unknown)


# -- the bank's view -----------------------------------------------------------------------------

_EDUCATION_WORDS = {"doctorate": Text("博士", "doctorate"), "master": Text("硕士", "master's"), "bachelor": Text("本科", "bachelor's"),
                    "college": Text("大专", "college"), "other": Text("其他", "other")}


def _ratio_value(x: Decimal | None) -> Text | None:
    return None if x is None else _same(_pct(x))


def _bank(f: dict[str, Any], c: TechConfig) -> list[Indicator]:
    b, w = c.bank, c.weights
    inv, head = _count(f, "invention_patents"), _count(f, "headcount")
    density = None if inv is None or not head else Decimal(inv) * HUNDRED / Decimal(head)
    prev = _count(f, "invention_patents_12m_ago")
    trend = None if inv is None or prev is None else Decimal(inv - prev)
    rd, rd_growth, staff = _number(f, "rd_ratio"), _number(f, "rd_growth"), _number(f, "tech_staff_ratio")
    tenure, share = _number(f, "management_tenure_years"), _number(f, "tech_revenue_share")
    education = f.get("founder_education")
    education = education if isinstance(education, str) and education in EDUCATION_LEVELS else None
    certs = _certificates(f)
    held = sorted(c for c in certs if c in b.certifications) if certs is not None else []
    cert_pts = min(w.certifications, sum(b.certifications[c] for c in held))
    return [
        _indicator("invention_density", Text("发明专利密度", "invention-patent density"),
                   None if density is None else Text(f"每百人 {density:.2f} 项", f"{density:.2f} per 100 staff"), _band(density, b.invention_density), w.invention_density),
        _indicator("invention_trend", Text("发明专利增长", "invention-patent trend"),
                   None if trend is None else Text(f"12 个月新增 {trend:+}", f"{trend:+} in 12 months"), _band(trend, b.invention_trend), w.invention_trend),
        _indicator("rd_intensity", Text("研发强度", "R&D intensity"), _ratio_value(rd), _band(rd, b.rd_intensity), w.rd_intensity),
        _indicator("rd_growth", Text("研发投入增长", "R&D growth"), _ratio_value(rd_growth), _band(rd_growth, b.rd_growth), w.rd_growth),
        _indicator("tech_staff", Text("科技人员占比", "tech-staff ratio"), _ratio_value(staff), _band(staff, b.tech_staff), w.tech_staff),
        _indicator("team_education", Text("创始人学历", "founder's education"), None if education is None else _EDUCATION_WORDS[education],
                   0 if education is None else getattr(b.team_education, education), w.team_education),
        _indicator("team_tenure", Text("管理团队稳定性", "management tenure"), None if tenure is None else Text(f"{_num(tenure)} 年", f"{_num(tenure)} years"),
                   _band(tenure, b.team_tenure), w.team_tenure),
        _indicator("certifications", Text("资质认定", "certifications"),
                   None if certs is None else Text("、".join(held) or "无", ", ".join(held) or "none"), cert_pts, w.certifications),
        _indicator("commercialisation", Text("成果转化", "commercialisation"), _ratio_value(share), _band(share, b.commercialisation), w.commercialisation),
    ]


# -- the evaluation --------------------------------------------------------------------------------


def _official(key: str, name: Text, q: Qualification, weight: int) -> Indicator:
    points = Decimal(weight) * q.points / HUNDRED
    has_data = any(p.has_data for p in q.parts)
    missing = [_UNKNOWN_WORDS[k] for k in q.not_verified]
    gap = Text(f"，缺少{'、'.join(m.zh for m in missing)}数据" if missing else "", f", no data on {', '.join(m.en for m in missing)}" if missing else "")
    verdict = Text("符合" if q.passed else "不符合", "qualified" if q.passed else "not qualified")
    value = Text(f"{q.points}/100，{verdict.zh}{gap.zh}", f"{q.points}/100, {verdict.en}{gap.en}") if has_data or q.passed else None
    return _indicator(key, name, value, points, weight)


def _listed(indicators: Sequence[Indicator], keep: Callable[[Indicator], bool], rank: Callable[[Indicator], Decimal], words: Callable[[Indicator], Text]) -> tuple[Text, ...]:
    order = {ind.key: i for i, ind in enumerate(indicators)}
    chosen = sorted((i for i in indicators if i.max_points > 0 and keep(i)), key=lambda i: (-rank(i), order[i.key]))
    return tuple(words(i) for i in chosen[:MAX_LISTED])


def _strength(i: Indicator) -> Text:
    assert i.value is not None
    return Text(f"{i.name.zh}：{i.value.zh}（{_num(i.points)}/{i.max_points} 分）", f"{i.name.en}: {i.value.en} ({_num(i.points)}/{i.max_points})")


def _weakness(i: Indicator) -> Text:
    if i.value is None:
        return Text(f"缺少{i.name.zh}数据（0/{i.max_points} 分）", f"no data on {i.name.en} (0/{i.max_points})")
    return Text(f"{i.name.zh}不足：{i.value.zh}（{_num(i.points)}/{i.max_points} 分）", f"weak {i.name.en}: {i.value.en} ({_num(i.points)}/{i.max_points})")


def evaluate_tech(features: dict[str, Any], config: TechConfig) -> TechEvaluation:
    """The evaluation of one profile's features under `config`. Never raises on the
    features: whatever is missing or malformed is "no data"."""
    f = features if isinstance(features, dict) else {}
    most, innovative = evaluate_most(f, config), evaluate_innovative(f, config)
    indicators = (
        _official("most", Text("科技型中小企业评价", "MOST tech-based SME score"), most, config.weights.most),
        _official("innovative", Text("创新型中小企业评价", "MIIT innovative SME score"), innovative, config.weights.innovative),
        *_bank(f, config),
    )
    score = sum((i.points for i in indicators), Decimal(0)).quantize(SCORE_PLACES, rounding=ROUND_HALF_UP)
    assert 0 <= score <= 100, "the config's weights add up to 100 and no indicator exceeds its weight"
    return TechEvaluation(
        config=config.label,
        config_sha256=config.sha256,
        score=score,
        grade=config.grade_of(score),
        most=most,
        innovative=innovative,
        indicators=indicators,
        strengths=_listed(indicators, lambda i: i.has_data and i.points > 0, lambda i: i.points, _strength),
        weaknesses=_listed(indicators, lambda i: i.points < i.max_points, lambda i: i.max_points - i.points, _weakness),
    )
