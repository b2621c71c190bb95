"""A deterministic synthetic universe of Wenzhou enterprises.

One hidden factor, `latent_risk` (standard normal, higher = riskier), drives the
observable indicators (tax credit grade, margins, growth, overdue history,
social-insurance arrears) and the 12-month default flag, so that scores built on
the observables rank the hidden truth. A second factor, tech intensity, drives
R&D, staff, patents and certifications and is mildly better for risk. Sizes are
heavy-tailed (log-normal revenue). Everything is a pure function of
(`n`, `seed`, `as_of`): the same arguments give byte-identical output.

The table is columnar (`dict[str, numpy.ndarray]`, one row per enterprise) so a
million rows fit in memory and go to Parquet in one call; a region's ten million
are made part by part (`generate_parts`); `source_payloads` turns one row into
what each data source would return.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np

from sandu.domain.ids import ascii_rows, digit_rows, org_code_check_chars, resident_id_check_chars, rows_to_str, uscc_check_chars
from sandu.simulate.geo import (
    BRAND_SYLLABLES,
    CERT_GAOXIN,
    CERT_KEJIXING,
    CERT_XIAOJUREN,
    CERT_ZHUANJINGTEXIN,
    DISTRICTS,
    INDUSTRIES,
)

MAX_ENTERPRISES = 5_000_000  # one `generate`, in memory at once (~1.5 GB per million while it is made)
PART_ROWS = 1_000_000  # the rows of one part of `generate_parts`
MAX_PARTED = 20_000_000  # a region's enterprises, made part by part (the organisation codes allow 10⁸)
FEN_PER_YUAN = 100
TAX_GRADES = np.array(["A", "B", "M", "C", "D"])
COLLATERAL_KINDS = np.array(["industrial_property", "land_use_right", "residential"])
# Multiplier and offset that make org-code bodies a bijection of the row index.
_ORG_MULTIPLIER = 48_271_019  # coprime with 10**8
SOURCES = ("tax", "invoices", "social_insurance", "utilities", "ip", "credit_bureau", "bank_flows", "collateral")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _fen(yuan: np.ndarray) -> np.ndarray:
    """Whole yuan amounts → integer fen (the universe is built to the yuan)."""
    return np.rint(yuan).astype(np.int64) * FEN_PER_YUAN


def generate(n: int, seed: int, as_of: date) -> dict[str, np.ndarray]:
    """`n` random enterprises as columns. Deterministic in (n, seed, as_of)."""
    return _generate(n, seed, as_of, 0, None)[0]


def generate_parts(n: int, seed: int, as_of: date, part_rows: int = PART_ROWS) -> Iterator[dict[str, np.ndarray]]:
    """`n` random enterprises (at most MAX_PARTED) as parts of `part_rows` rows each (the last one the rest), made one at
    a time: a universe larger than one `generate` holds in memory, written part by part. Deterministic in (n, seed,
    as_of, part_rows). Part 0 is `generate(min(n, part_rows), seed, as_of)`, so a universe of one part is `generate`'s;
    part k draws its values from (seed, k), and its identifiers continue part 0's: one bijection of the row's index in
    the whole onto organisation codes, so no two rows of any part share a USCC."""
    if not 0 <= n <= MAX_PARTED:
        raise ValueError(f"n must be within 0..{MAX_PARTED:,}, got {n}")
    if not 1 <= part_rows <= MAX_ENTERPRISES:
        raise ValueError(f"part_rows must be within 1..{MAX_ENTERPRISES:,}, got {part_rows}")
    return _parts(n, seed, as_of, part_rows)  # the arguments refused now, not at the first part


def _parts(n: int, seed: int, as_of: date, part_rows: int) -> Iterator[dict[str, np.ndarray]]:
    org_offset = None
    for k, first in enumerate(range(0, n, part_rows)):
        part, org_offset = _generate(min(part_rows, n - first), seed, as_of, k, org_offset, first)
        yield part


def _generate(n: int, seed: int, as_of: date, part: int, org_offset: int | None, first: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """(`n` enterprises as columns, the offset of their organisation codes): part `part` of a universe, drawn from
    (seed, part) — part 0 from `seed` alone —, its rows' identifiers those of the indices `first`… under `org_offset`
    (None: drawn, as part 0's is)."""
    if not 0 <= n <= MAX_ENTERPRISES:
        raise ValueError(f"n must be within 0..{MAX_ENTERPRISES}, got {n}")
    assert 0 <= first and first + n <= MAX_PARTED, "a part's rows are within the universe's bijection of indices"
    rng = np.random.default_rng(np.random.PCG64([seed, 0x5A4D] + ([part] if part else [])))

    district_names = np.array(list(DISTRICTS))
    district_p = np.array([share for _, share in DISTRICTS.values()])
    industry_names = np.array(list(INDUSTRIES))
    industry_p = np.array([v[2] for v in INDUSTRIES.values()])
    district_idx = rng.choice(len(district_names), size=n, p=district_p / district_p.sum())
    district = district_names[district_idx]
    industry_idx = rng.choice(len(industry_names), size=n, p=industry_p / industry_p.sum())
    industry = industry_names[industry_idx]
    tech_base = np.array([v[0] for v in INDUSTRIES.values()])[industry_idx]
    kwh_per_wan = np.array([v[1] for v in INDUSTRIES.values()])[industry_idx]

    risk = rng.standard_normal(n)
    tech = tech_base + 0.8 * rng.standard_normal(n) - 0.2 * risk

    # Size: log-normal revenue in yuan, median ~1,800万, heavy right tail.
    revenue_y3 = np.clip(np.exp(rng.normal(np.log(1.8e7), 1.05, n) + 0.15 * tech), 2e5, 5e9)
    growth = np.clip(rng.normal(0.06 + 0.03 * tech - 0.05 * risk, 0.12, (2, n)), -0.5, 1.0)
    revenue_y2 = revenue_y3 / (1 + growth[1])
    revenue_y1 = revenue_y2 / (1 + growth[0])
    revenues = np.stack([revenue_y1, revenue_y2, revenue_y3])

    margin = np.clip(rng.normal(0.07 - 0.025 * risk, 0.04, (3, n)), -0.15, 0.35)
    value_added = np.clip(rng.normal(0.24, 0.05, (3, n)), 0.08, 0.5)
    vat = revenues * value_added * 0.13
    rd_ratio = np.clip(0.012 + 0.018 * _sigmoid(1.6 * tech) + rng.normal(0, 0.008, n), 0.0, 0.2)
    rd_expense = revenues * rd_ratio
    headcount = np.maximum(3, np.rint(revenue_y3 / np.exp(rng.normal(np.log(6e5), 0.4, n)))).astype(np.int64)
    tech_staff_ratio = np.clip(0.06 + 0.09 * tech + rng.normal(0, 0.04, n), 0.0, 0.8)
    tech_staff = np.rint(headcount * tech_staff_ratio).astype(np.int64)
    size_z = np.log(revenue_y3 / 1.8e7)
    invention = rng.poisson(np.exp(-1.2 + 1.1 * tech + 0.35 * size_z))
    utility = rng.poisson(np.exp(0.6 + 0.6 * tech + 0.3 * size_z))
    software = rng.poisson(np.exp(-0.8 + 0.7 * tech))

    u = rng.random((4, n))
    gaoxin = (rd_ratio >= 0.03) & ((invention >= 1) | (utility >= 4)) & (tech_staff_ratio >= 0.10) & (u[0] < 0.85)
    zhuanjing = gaoxin & (revenue_y3 >= 3e7) & (u[1] < 0.30)
    xiaojuren = zhuanjing & (revenue_y3 >= 1e8) & (u[2] < 0.25)
    kejixing = (rd_ratio >= 0.02) & (headcount <= 500) & (revenue_y3 <= 2e8) & (u[3] < 0.7)
    cit_rate = np.where(gaoxin, 0.15, 0.25)
    cit = np.maximum(revenues * margin, 0) * cit_rate * 0.8  # R&D super-deduction lowers taxable profit

    grade_score = -risk + rng.normal(0, 0.6, n)
    tax_grade = TAX_GRADES[np.digitize(-grade_score, [-0.6, 0.7, 1.4, 2.2])]

    si_arrears = rng.poisson(np.exp(-3.0 + 1.1 * risk))
    headcount_prev = np.maximum(1, np.rint(headcount / np.clip(1 + growth[1] * 0.5 + rng.normal(0, 0.05, n), 0.5, 2)))
    kwh = revenue_y3 / 1e4 * kwh_per_wan * np.exp(rng.normal(0, 0.15, n))
    kwh_prev = kwh / np.clip(1 + growth[1] + rng.normal(0, 0.05, n), 0.3, 3)
    utility_arrears = rng.random(n) < _sigmoid(-4.0 + 1.2 * risk)

    invoice = revenue_y3 * np.clip(rng.normal(1.0, 0.05, n), 0.7, 1.2)
    invoice_count = np.maximum(1, np.rint(invoice / np.exp(rng.normal(np.log(4e4), 0.6, n)))).astype(np.int64)
    customers = np.maximum(1, np.rint(invoice_count / np.exp(rng.normal(np.log(12), 0.5, n)))).astype(np.int64)

    loans = revenue_y3 * np.clip(rng.normal(0.12 + 0.06 * risk, 0.08, n), 0, 1.5)
    overdue_count = rng.poisson(np.exp(-2.6 + 1.3 * risk))
    max_overdue_days = np.where(overdue_count > 0, rng.integers(1, 120, n) * np.minimum(overdue_count, 3), 0)
    queries = rng.poisson(np.exp(0.3 + 0.3 * risk))
    inflow = revenue_y3 * np.clip(rng.normal(1.05, 0.12, n), 0.5, 1.6)
    outflow = inflow * np.clip(rng.normal(0.97 + 0.02 * risk, 0.03, n), 0.8, 1.2)

    owns = rng.random((2, n)) < np.stack([_sigmoid(-0.2 + 0.6 * size_z), _sigmoid(-1.8 + 0.5 * size_z)])
    appraised = revenue_y3 * rng.uniform(0.15, 0.7, (2, n)) * owns
    pledged = (rng.random((2, n)) < 0.45) & owns
    secured_debt = appraised * rng.uniform(0.3, 0.65, (2, n)) * pledged
    kinds = COLLATERAL_KINDS[rng.integers(0, 3, (2, n))]

    default = rng.random(n) < _sigmoid(-3.7 + 1.25 * risk)
    has_account = rng.random(n) < 0.6
    founded = (as_of.year - 3 - rng.integers(0, 25, n)).astype(np.int64)
    brand = np.array(BRAND_SYLLABLES)[rng.integers(0, len(BRAND_SYLLABLES), (2, n))]
    births = rng.integers(0, 365 * 30, n)
    rep_seq = rng.integers(0, 1000, n)
    if org_offset is None:  # the stream's last draw: a part given the offset draws the rest as part 0 would
        org_offset = int(rng.integers(0, 10**8))

    uscc, reps = _identifiers(first, n, district_idx, births, rep_seq, org_offset)
    words = np.array([INDUSTRIES[i][3] for i in industry_names])[industry_idx]
    names = np.char.add(np.char.add(np.char.add(np.char.add("温州", district), brand[0]), np.char.add(brand[1], words)), "有限公司")

    table: dict[str, np.ndarray] = {
        "uscc": uscc,
        "name": names.astype(str),
        "district": district.astype(str),
        "industry": industry.astype(str),
        "legal_rep_id": reps,
        "has_bank_account": has_account,
        "founded_year": founded,
        "latent_risk": np.round(risk, 6),
        "default_12m": default,
        "story": np.full(n, "", dtype=object).astype(str),
        "tax_credit_grade": tax_grade.astype(str),
        "sales_invoice_fen_12m": _fen(invoice),
        "sales_invoice_count_12m": invoice_count,
        "customer_count_12m": customers,
        "headcount": headcount,
        "headcount_12m_ago": headcount_prev.astype(np.int64),
        "tech_staff": tech_staff,
        "si_arrears_months": si_arrears.astype(np.int64),
        "electricity_kwh_12m": np.rint(kwh).astype(np.int64),
        "electricity_kwh_prev_12m": np.rint(kwh_prev).astype(np.int64),
        "utility_arrears": utility_arrears,
        "invention_patents": invention.astype(np.int64),
        "utility_models": utility.astype(np.int64),
        "software_copyrights": software.astype(np.int64),
        "cert_gaoxin": gaoxin,
        "cert_zhuanjingtexin": zhuanjing,
        "cert_xiaojuren": xiaojuren,
        "cert_kejixing": kejixing,
        "loans_outstanding_fen": _fen(loans),
        "overdue_count_24m": overdue_count.astype(np.int64),
        "max_overdue_days_24m": max_overdue_days.astype(np.int64),
        "queries_3m": queries.astype(np.int64),
        "inflow_fen_12m": _fen(inflow),
        "outflow_fen_12m": _fen(outflow),
    }
    for y in range(3):
        table[f"revenue_fen_y{y + 1}"] = _fen(revenues[y])
        table[f"vat_fen_y{y + 1}"] = _fen(vat[y])
        table[f"cit_fen_y{y + 1}"] = _fen(cit[y])
        table[f"rd_expense_fen_y{y + 1}"] = _fen(rd_expense[y])
    for k in range(2):
        table[f"col{k + 1}_kind"] = np.where(owns[k], kinds[k], "").astype(str)
        table[f"col{k + 1}_appraised_fen"] = _fen(np.rint(appraised[k] / 1e4) * 1e4)
        table[f"col{k + 1}_secured_debt_fen"] = _fen(np.rint(secured_debt[k] / 1e4) * 1e4)
    table["bureau_secured_debt_fen"] = table["col1_secured_debt_fen"] + table["col2_secured_debt_fen"]
    return table, org_offset


def _identifiers(first: int, n: int, district_idx: np.ndarray, births: np.ndarray, rep_seq: np.ndarray,
                 org_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid USCCs (91 + region + GB 11714 organisation code + check) and legal representatives' resident IDs (region +
    birth date + sequence + check) of the rows of indices `first`…`first + n − 1`, all at once. The organisation code is
    a bijection of the index (below 10⁸), whatever the region: no two rows share one."""
    region = ascii_rows([code for code, _ in DISTRICTS.values()], 6)[district_idx]
    org8 = digit_rows((np.arange(first, first + n, dtype=np.int64) * _ORG_MULTIPLIER + org_offset) % 10**8, 8)
    prefix = np.tile(np.frombuffer(b"91", dtype=np.uint8), (n, 1))
    first17 = np.hstack([prefix, region, org8, org_code_check_chars(org8)[:, None]])
    uscc = rows_to_str(np.hstack([first17, uscc_check_chars(first17)[:, None]]))
    birth = (np.datetime64("1960-01-01") + births.astype("timedelta64[D]")).astype("datetime64[D]")
    ymd = ascii_rows(np.datetime_as_string(birth, unit="D"), 10)[:, [0, 1, 2, 3, 5, 6, 8, 9]]
    rid17 = np.hstack([region, ymd, digit_rows(rep_seq, 3)])
    reps = rows_to_str(np.hstack([rid17, resident_id_check_chars(rid17)[:, None]]))
    return uscc, reps


def row(table: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """Row `i` as plain Python values."""
    return {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in table.items()}


def source_payloads(r: dict[str, Any], as_of: date) -> dict[str, dict[str, Any]]:
    """What each data source holds about the enterprise in row `r` (JSON-ready)."""
    years = [as_of.year - 3 + k for k in range(3)]
    certs = [
        name
        for name, flag in (
            (CERT_GAOXIN, "cert_gaoxin"),
            (CERT_ZHUANJINGTEXIN, "cert_zhuanjingtexin"),
            (CERT_XIAOJUREN, "cert_xiaojuren"),
            (CERT_KEJIXING, "cert_kejixing"),
        )
        if r[flag]
    ]
    assets = [
        {
            "id": f"C{k}",
            "kind": r[f"col{k}_kind"],
            "appraised_value_fen": r[f"col{k}_appraised_fen"],
            "secured_debt_fen": r[f"col{k}_secured_debt_fen"],
        }
        for k in (1, 2)
        if r[f"col{k}_kind"]
    ]
    return {
        "tax": {
            "tax_credit_grade": r["tax_credit_grade"],
            "years": [
                {
                    "year": years[y],
                    "revenue_fen": r[f"revenue_fen_y{y + 1}"],
                    "vat_fen": r[f"vat_fen_y{y + 1}"],
                    "cit_fen": r[f"cit_fen_y{y + 1}"],
                    "rd_expense_fen": r[f"rd_expense_fen_y{y + 1}"],
                }
                for y in range(3)
            ],
        },
        "invoices": {
            "months": 12,
            "sales_invoice_fen": r["sales_invoice_fen_12m"],
            "sales_invoice_count": r["sales_invoice_count_12m"],
            "customer_count": r["customer_count_12m"],
        },
        "social_insurance": {
            "headcount": r["headcount"],
            "headcount_12m_ago": r["headcount_12m_ago"],
            "tech_staff": r["tech_staff"],
            "arrears_months": r["si_arrears_months"],
        },
        "utilities": {
            "electricity_kwh_12m": r["electricity_kwh_12m"],
            "electricity_kwh_prev_12m": r["electricity_kwh_prev_12m"],
            "arrears": bool(r["utility_arrears"]),
        },
        "ip": {
            "invention_patents": r["invention_patents"],
            "utility_models": r["utility_models"],
            "software_copyrights": r["software_copyrights"],
            "certifications": certs,
        },
        "credit_bureau": {
            "loans_outstanding_fen": r["loans_outstanding_fen"],
            "secured_debt_fen": r["bureau_secured_debt_fen"],
            "overdue_count_24m": r["overdue_count_24m"],
            "max_overdue_days_24m": r["max_overdue_days_24m"],
            "queries_3m": r["queries_3m"],
        },
        "bank_flows": {"months": 12, "inflow_fen": r["inflow_fen_12m"], "outflow_fen": r["outflow_fen_12m"]},
        "collateral": {"assets": assets},
    }
