"""Tech-strength evaluation (科创评价).

Base: the MOST 科技型中小企业 indicator system (DOMAIN.md) — tech staff ratio (20),
R&D / sales (50), intellectual property (30); pass at 60; automatic pass with a
valid 高新技术企业 certificate. On top, the bank's view: certifications held and
invention-patent depth. Pure: profile features in, an explained evaluation out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandu.domain.certs import CERT_GAOXIN, CERT_KEJIXING, CERT_XIAOJUREN, CERT_ZHUANJINGTEXIN

TECH_MODEL_VERSION = "tech-most2022+bank-v1"
MOST_PASS_POINTS = 60
# (minimum ratio, points), best first — 科技型中小企业评价办法 (2022)
TECH_STAFF_BANDS = ((Decimal("0.30"), 20), (Decimal("0.25"), 16), (Decimal("0.20"), 12), (Decimal("0.15"), 8), (Decimal("0.10"), 4))
RD_RATIO_BANDS = ((Decimal("0.06"), 50), (Decimal("0.05"), 40), (Decimal("0.04"), 30), (Decimal("0.03"), 20), (Decimal("0.02"), 10))
CLASS_I_POINTS = 30
CLASS_II_POINTS = ((4, 24), (3, 18), (2, 12), (1, 6))
# The bank's view: MOST points weigh 70%, certifications and patent depth add up to 30.
MOST_WEIGHT = Decimal("0.7")
CERT_BONUS = {CERT_GAOXIN: 10, CERT_ZHUANJINGTEXIN: 10, CERT_XIAOJUREN: 15, CERT_KEJIXING: 5}
PATENT_DEPTH_MIN = 5
PATENT_DEPTH_BONUS = 5
BANK_BONUS_CAP = 30


@dataclass(frozen=True)
class Indicator:
    name: str
    value: str
    points: int
    max_points: int
    explanation: str


@dataclass(frozen=True)
class TechEvaluation:
    score: Decimal  # 0–100, one decimal
    most_points: int  # 0–100 on the official scale
    most_pass: bool
    auto_pass_reason: str | None
    bank_bonus: int
    indicators: tuple[Indicator, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": TECH_MODEL_VERSION,
            "score": str(self.score),
            "most_points": self.most_points,
            "most_pass": self.most_pass,
            "auto_pass_reason": self.auto_pass_reason,
            "bank_bonus": self.bank_bonus,
            "indicators": [i.__dict__ for i in self.indicators],
        }


def _band(value: Decimal | None, bands: tuple[tuple[Decimal, int], ...]) -> int:
    if value is None:
        return 0
    return next((pts for floor, pts in bands if value >= floor), 0)


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def evaluate_tech(features: dict[str, Any]) -> TechEvaluation:
    staff = None if features.get("tech_staff_ratio") is None else Decimal(str(features["tech_staff_ratio"]))
    rd = None if features.get("rd_ratio") is None else Decimal(str(features["rd_ratio"]))
    invention = features.get("invention_patents") or 0
    class_ii = (features.get("utility_models") or 0) + (features.get("software_copyrights") or 0)
    certs = set(features.get("certifications") or [])

    staff_pts = _band(staff, TECH_STAFF_BANDS)
    rd_pts = _band(rd, RD_RATIO_BANDS)
    ip_pts = CLASS_I_POINTS if invention >= 1 else next((p for n, p in CLASS_II_POINTS if class_ii >= n), 0)
    most = staff_pts + rd_pts + ip_pts
    auto = f"holds a valid {CERT_GAOXIN} certificate" if CERT_GAOXIN in certs else None

    bonus_items = [(c, CERT_BONUS[c]) for c in sorted(certs) if c in CERT_BONUS]
    depth = PATENT_DEPTH_BONUS if invention >= PATENT_DEPTH_MIN else 0
    bonus = min(BANK_BONUS_CAP, sum(p for _, p in bonus_items) + depth)
    score = (MOST_WEIGHT * most + bonus).quantize(Decimal("0.1"))  # ≤ 100: MOST ≤ 100 weighs ≤ 70, the bonus ≤ 30

    indicators = (
        Indicator("tech_staff_ratio", _pct(staff), staff_pts, 20, f"科技人员占比 {_pct(staff)}: {staff_pts}/20"),
        Indicator("rd_ratio", _pct(rd), rd_pts, 50, f"研发投入占销售收入 {_pct(rd)}: {rd_pts}/50"),
        Indicator(
            "intellectual_property",
            f"{invention} invention, {class_ii} class-II",
            ip_pts,
            30,
            f"知识产权: {invention} 项一类 (发明专利), {class_ii} 项二类: {ip_pts}/30",
        ),
        Indicator(
            "bank_view",
            ", ".join(c for c, _ in bonus_items) or "none",
            bonus,
            BANK_BONUS_CAP,
            f"资质与专利深度加分 {bonus}/{BANK_BONUS_CAP}"
            + (f" (发明专利 ≥ {PATENT_DEPTH_MIN}: +{depth})" if depth else ""),
        ),
    )
    return TechEvaluation(
        score=score,
        most_points=most,
        most_pass=most >= MOST_PASS_POINTS or auto is not None,
        auto_pass_reason=auto,
        bank_bonus=bonus,
        indicators=indicators,
    )
