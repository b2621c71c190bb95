"""The five enterprises of STORIES.md, as rows of the universe.

Their data are chosen so that the *policy* produces each story's shape; nothing
downstream branches on the story label. Amounts are in 万元 here for reading
and converted to fen in the row.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sandu.domain.ids import make_resident_id, make_uscc, org_code_check_char
from sandu.simulate.geo import DISTRICTS

WAN_FEN = 1_000_000


def _uscc(district: str, org8: str) -> str:
    return make_uscc("9", "1", DISTRICTS[district][0], org8 + org_code_check_char(org8))


def _row(
    story: str,
    name: str,
    district: str,
    industry: str,
    org8: str,
    *,
    revenue_wan: tuple[float, float, float],
    vat_wan: float,
    cit_wan: float,
    rd_ratio: float,
    headcount: int,
    tech_staff_ratio: float,
    invention: int,
    utility: int,
    software: int,
    certs: tuple[str, ...],
    has_account: bool,
    collateral: tuple[tuple[str, float, float], ...] = (),
    loans_wan: float = 0.0,
) -> dict[str, Any]:
    region = DISTRICTS[district][0]
    r: dict[str, Any] = {
        "uscc": _uscc(district, org8),
        "name": name,
        "district": district,
        "industry": industry,
        "legal_rep_id": make_resident_id(region, date(1975, 3, 1 + int(story[1])), "021"),
        "has_bank_account": has_account,
        "founded_year": 2008,
        "latent_risk": -1.0,
        "default_12m": False,
        "story": story,
        "tax_credit_grade": "A",
        "sales_invoice_fen_12m": int(revenue_wan[2] * 0.98 * WAN_FEN),
        "sales_invoice_count_12m": int(revenue_wan[2] * 2.5),
        "customer_count_12m": 180,
        "headcount": headcount,
        "headcount_12m_ago": int(headcount * 0.94),
        "tech_staff": round(headcount * tech_staff_ratio),
        "si_arrears_months": 0,
        "electricity_kwh_12m": int(revenue_wan[2] * 190),
        "electricity_kwh_prev_12m": int(revenue_wan[1] * 190),
        "utility_arrears": False,
        "invention_patents": invention,
        "utility_models": utility,
        "software_copyrights": software,
        "cert_gaoxin": "高新技术企业" in certs,
        "cert_zhuanjingtexin": "专精特新" in certs,
        "cert_xiaojuren": "小巨人" in certs,
        "cert_kejixing": "科技型中小企业" in certs,
        "loans_outstanding_fen": int(loans_wan * WAN_FEN),
        "overdue_count_24m": 0,
        "max_overdue_days_24m": 0,
        "queries_3m": 1,
        "inflow_fen_12m": int(revenue_wan[2] * 1.04 * WAN_FEN),
        "outflow_fen_12m": int(revenue_wan[2] * 0.99 * WAN_FEN),
    }
    for y in range(3):
        r[f"revenue_fen_y{y + 1}"] = int(revenue_wan[y] * WAN_FEN)
        scale = revenue_wan[y] / revenue_wan[2]
        r[f"vat_fen_y{y + 1}"] = int(vat_wan * scale * WAN_FEN)
        r[f"cit_fen_y{y + 1}"] = int(cit_wan * scale * WAN_FEN)
        r[f"rd_expense_fen_y{y + 1}"] = int(revenue_wan[y] * rd_ratio * WAN_FEN)
    for k in (1, 2):
        kind, appraised, debt = collateral[k - 1] if len(collateral) >= k else ("", 0.0, 0.0)
        r[f"col{k}_kind"] = kind
        r[f"col{k}_appraised_fen"] = int(appraised * WAN_FEN)
        r[f"col{k}_secured_debt_fen"] = int(debt * WAN_FEN)
    r["bureau_secured_debt_fen"] = r["col1_secured_debt_fen"] + r["col2_secured_debt_fen"]
    return r


STORY_ROWS: tuple[dict[str, Any], ...] = (
    _row(
        "S1", "温州龙湾宏力紧固件有限公司", "龙湾", "汽车零部件", "70810001",
        revenue_wan=(18_500, 20_000, 22_000), vat_wan=560, cit_wan=200, rd_ratio=0.052,
        headcount=420, tech_staff_ratio=0.26, invention=6, utility=24, software=2,
        certs=("高新技术企业",), has_account=True, loans_wan=1_800,
    ),
    _row(
        "S2", "永嘉瓯正阀门有限公司", "永嘉", "阀门泵业", "70810002",
        revenue_wan=(1_350, 1_420, 1_500), vat_wan=40, cit_wan=12, rd_ratio=0.012,
        headcount=60, tech_staff_ratio=0.08, invention=0, utility=2, software=0,
        certs=(), has_account=False, loans_wan=0,  # was 120万: unsecured debt now comes off the measure; a firm new to banking, no loans: 416万 stays
    ),
    _row(
        "S3", "乐清华创电子科技有限公司", "乐清", "电子元器件", "70810003",
        revenue_wan=(4_800, 5_400, 6_000), vat_wan=33, cit_wan=11.5, rd_ratio=0.07,
        headcount=160, tech_staff_ratio=0.32, invention=9, utility=31, software=6,
        certs=("高新技术企业", "专精特新", "科技型中小企业"), has_account=True, loans_wan=0,  # was 300万: an R&D-heavy firm without bank debt, so its fast-track release stays ~400万
    ),
    _row(
        "S4", "温州龙湾康瑞医疗器械有限公司", "龙湾", "医疗器械", "70810004",
        revenue_wan=(6_500, 7_200, 8_000), vat_wan=210, cit_wan=90, rd_ratio=0.065,
        headcount=230, tech_staff_ratio=0.35, invention=12, utility=40, software=5,
        certs=("高新技术企业", "科技型中小企业"), has_account=True,
        collateral=(("industrial_property", 1_450, 0),), loans_wan=300,
    ),
    _row(
        "S5", "苍南恒信塑业有限公司", "苍南", "塑料包装", "70810005",
        revenue_wan=(17_000, 18_600, 20_000), vat_wan=480, cit_wan=160, rd_ratio=0.041,
        headcount=380, tech_staff_ratio=0.21, invention=2, utility=35, software=1,
        certs=("高新技术企业", "专精特新", "科技型中小企业"), has_account=True,
        collateral=(("industrial_property", 6_000, 1_500), ("industrial_property", 2_000, 0)),
        loans_wan=1_500,  # was 2,600万: S5's debt is the 1,500万 mortgage on the pledged plant, its residual value the story
    ),
)
