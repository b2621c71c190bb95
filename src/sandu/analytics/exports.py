"""Files a person opens: CSV for tools, xlsx for people (Chinese headers, amounts in 万元), JSON for programs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from sandu.domain.errors import InvalidInput
from sandu.domain.money import FEN_PER_WAN
from sandu.policy.whatif import PolicyFigures, WhatIf

FORMATS = ("csv", "xlsx", "json")
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows, the header aside
WAN_FORMAT = '#,##0.00"万"'
_HEADER = Font(bold=True, color="FFFFFF")
_FILL = PatternFill("solid", fgColor="1F4E79")

FIGURES: tuple[tuple[str, str, str], ...] = (  # attribute, Chinese header, number format
    ("applications", "申请数", "#,##0"),
    ("approved", "批准（全部或部分）", "#,##0"),
    ("referred", "转人工", "#,##0"),
    ("declined", "拒绝", "#,##0"),
    ("approval_rate", "批准率", "0.00%"),
    ("total_limit_fen", "综合授信（万元）", WAN_FORMAT),
    ("approved_fen", "自动批准额度（万元）", WAN_FORMAT),
    ("average_rate", "加权平均利率", "0.0000%"),
    ("expected_loss_fen", "预期损失 PD×敞口（万元）", WAN_FORMAT),
)


def format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidInput("out", f"{path.name}: the file's extension says no format sandu writes", ", ".join(f".{f}" for f in FORMATS))
    return suffix


def _value(figures: PolicyFigures, attr: str) -> Any:
    value = getattr(figures, attr)
    if attr.endswith("_fen"):
        return Decimal(value) / FEN_PER_WAN
    return value


def _sheet(wb: Workbook, title: str, headers: list[str], rows: list[list[Any]], formats: list[str | None]) -> None:
    ws = wb.create_sheet(title)
    ws.append(headers)
    for cell in ws[1]:
        cell.font, cell.fill, cell.alignment = _HEADER, _FILL, Alignment(horizontal="center", wrap_text=True)
    for row in rows:
        ws.append([float(v) if isinstance(v, Decimal) else v for v in row])  # a spreadsheet's numbers are doubles: shown, not summed to the fen
    for k, fmt in enumerate(formats, start=1):
        letter = get_column_letter(k)
        ws.column_dimensions[letter].width = max(14, len(headers[k - 1]) * 2 + 2)
        if fmt:
            for cell in ws[letter][1:]:
                cell.number_format = fmt
    ws.freeze_panes = "A2"


def write_whatif(w: WhatIf, path: Path) -> None:
    """The what-if as `path`'s format says: csv (one row per application), xlsx (summary, outcome changes,
    every application), json (the summary and the changes listed)."""
    kind = format_of(path)
    if kind == "json":
        path.write_text(json.dumps(w.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        return
    if kind == "csv":
        w.table.write_csv(path)
        return
    if w.table.height > XLSX_MAX_ROWS:
        raise InvalidInput("out", f"{w.table.height} applications do not fit one worksheet", f"at most {XLSX_MAX_ROWS}: write .csv")
    wb = Workbook()
    wb.remove(wb.active)
    summary = [[header, _value(w.current, attr), _value(w.changed, attr)] for attr, header, _ in FIGURES]
    _sheet(wb, "汇总", ["指标", f"现行 {w.current.policy}", f"拟议 {w.changed.policy}"], summary, [None, None, None])
    ws = wb["汇总"]
    for row, (_, _, fmt) in enumerate(FIGURES, start=2):
        for col in ("B", "C"):
            ws[f"{col}{row}"].number_format = fmt
    ws.append([])
    ws.append(["结果改变的申请", w.outcome_changes])
    ws.append(["额度改变的申请", w.limit_changes])
    changes = [[c.application_id, c.uscc, c.as_of, c.outcome_before, c.outcome_after, Decimal(c.limit_before_fen) / FEN_PER_WAN,
                Decimal(c.limit_after_fen) / FEN_PER_WAN] for c in w.changes]
    _sheet(wb, "结果变化", ["申请（决策）编号", "统一社会信用代码", "决策日", "现行结果", "拟议结果", "现行额度（万元）", "拟议额度（万元）"], changes,
           [None, None, "yyyy-mm-dd", None, None, WAN_FORMAT, WAN_FORMAT])
    every = [[r["application_id"], r["uscc"], r["as_of"], r["outcome_before"], r["outcome_after"], Decimal(r["limit_before_fen"]) / FEN_PER_WAN,
              Decimal(r["limit_after_fen"]) / FEN_PER_WAN, r["rate_before_bp"], r["rate_after_bp"]] for r in w.table.iter_rows(named=True)]
    _sheet(wb, "逐笔", ["申请（决策）编号", "统一社会信用代码", "决策日", "现行结果", "拟议结果", "现行额度（万元）", "拟议额度（万元）", "现行利率（bp）",
                      "拟议利率（bp）"], every, [None, None, "yyyy-mm-dd", None, None, WAN_FORMAT, WAN_FORMAT, "0.00", "0.00"])
    wb.save(path)
