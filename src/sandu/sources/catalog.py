"""The data sources one consent can cover, and what each is for."""

from __future__ import annotations

SOURCE_DESCRIPTIONS: dict[str, str] = {
    "tax": "税务: revenue, VAT, corporate income tax, R&D expense, tax credit grade (3 years)",
    "invoices": "发票: sales invoices of the last 12 months",
    "social_insurance": "社保: insured headcount, technical staff, arrears",
    "utilities": "水电: electricity use and arrears",
    "ip": "知识产权与资质: patents, software copyrights, tech certifications",
    "credit_bureau": "征信: loans, secured debt, overdue history, queries",
    "bank_flows": "银行流水: inflows and outflows of the last 12 months",
    "collateral": "抵押物: registered property, appraised values, secured debt",
}
ALL_SOURCES: tuple[str, ...] = tuple(SOURCE_DESCRIPTIONS)


def unknown_sources(scopes: list[str] | tuple[str, ...]) -> list[str]:
    return [s for s in scopes if s not in SOURCE_DESCRIPTIONS]
