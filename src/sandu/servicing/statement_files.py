"""A statement (对账单, `servicing.statements.Statement`) as a customer reads it: a table for the
terminal, CSV (UTF-8 with a byte-order mark, so that Excel reads the Chinese), XLSX, or JSON.

Pure: a statement in, text, bytes or a rich renderable out. Every amount is shown in 元 with two
decimals, computed exactly from integer fen (`yuan`, `yuan_decimal`): never through a float. The
sheet is the same in every format but JSON (which is the API's body, amounts in fen): the header
(line, enterprise, product, period), the opening balances, each movement, the totals of the
period, the closing balances, the interest charged by kind, what accrued and is not yet charged,
and what falls due next.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from sandu.servicing.statements import Statement

FORMATS: tuple[str, ...] = ("table", "csv", "xlsx", "json")
MONEY_FORMAT = "#,##0.00"  # the XLSX number format of every amount
DATE_FORMAT = "yyyy-mm-dd"
SHEET_TITLE = "对账单"

# The receivable buckets as a statement shows them, left to right.
COLUMNS: tuple[str, ...] = ("principal", "interest", "overdue_principal", "overdue_interest", "penalty", "compound")
BUCKET_LABELS: dict[str, str] = {"principal": "本金", "interest": "利息", "overdue_principal": "逾期本金", "overdue_interest": "逾期利息",
                                 "penalty": "罚息", "compound": "复利"}
CHARGE_LABELS: dict[str, str] = {"interest": "利息", "penalty": "罚息", "compound": "复利"}
MOVEMENT_LABELS: dict[str, str] = {"draw": "放款", "repayment": "还款", "interest": "结息", "penalty": "计收罚息", "compound": "计收复利",
                                   "overdue": "转逾期", "migrate": "余额迁移"}
DUE_LABELS: dict[str, str] = {"unpaid": "已到期未还", "settlement": "结息应付", "instalment": "分期应还", "maturity": "到期还本",
                              "repayment": "利随本清"}
MOVEMENT_HEADER: tuple[str, ...] = ("日期", "摘要", "借据号", *(BUCKET_LABELS[b] for b in COLUMNS), "放款", "还款", "参考号")
DUE_HEADER: tuple[str, ...] = ("借据号", "应还日期", "类型", "本金", "利息", "合计")


def yuan_decimal(fen: int) -> Decimal:
    """`fen` as an exact number of 元 with two decimals (1 fen = 0.01 元)."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"an amount is an int of fen, got {type(fen).__name__}")
    return Decimal(fen).scaleb(-2)


def yuan(fen: int, *, grouped: bool = True) -> str:
    """`fen` written in 元 with two decimals: 123456789 → "1,234,567.89" (without `grouped`: "1234567.89")."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"an amount is an int of fen, got {type(fen).__name__}")
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole:,}.{cents:02d}" if grouped else f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def percent(rate: str) -> str:
    """An annual rate kept as a decimal fraction ("0.0380") as a percentage ("3.80%")."""
    value = Decimal(rate).scaleb(2)
    return f"{value.quantize(Decimal('0.01')) if value == value.quantize(Decimal('0.01')) else value.normalize()}%"


@dataclass(frozen=True)
class Money:
    """An amount cell, in fen."""

    fen: int


Cell = str | int | date | Money | None


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    style: str = ""  # "title", "section", "head", "total" or ""


def _row(*cells: Cell, style: str = "") -> Row:
    return Row(tuple(cells), style)


def _buckets(label: str, amounts: dict[str, int], *, style: str = "total") -> Row:
    return _row("", label, "", *(Money(amounts.get(b, 0)) for b in COLUMNS), style=style)


def header_rows(st: Statement, product_name: str | None = None) -> list[tuple[str, Cell]]:
    """The header block: (label, value) pairs."""
    product = f"{product_name}（{st.product}）" if product_name else st.product
    return [
        ("额度编号", st.line_id),
        ("借据号", "全部" if st.drawing_id is None else st.drawing_id),
        ("企业名称", st.enterprise_name),
        ("统一社会信用代码", st.uscc),
        ("产品", product),
        ("授信额度", Money(st.limit_fen)),
        ("年利率", percent(st.rate_annual)),
        ("账期", f"{st.period_from.isoformat()} 至 {st.period_to.isoformat()}"),
        ("结账日", st.closed_through),
        ("状态", "已结账（本期数据不再变动）" if st.final else f"未结账（{st.closed_through.isoformat()} 之后的日终尚未完成，本期数据可能变动）"),
        ("金额单位", "元"),
    ]


def sheet(st: Statement, product_name: str | None = None) -> list[Row]:
    """Every row of the statement, as the CSV and the XLSX hold it (amounts as `Money`)."""
    rows = [_row("对账单", style="title")]
    rows += [_row(label, value) for label, value in header_rows(st, product_name)]
    rows += [_row(), _row("交易明细", style="section"), _row(*MOVEMENT_HEADER, style="head"),
             _buckets("期初余额", st.opening_fen)]
    for mv in st.movements:
        rows.append(_row(mv.on_date, MOVEMENT_LABELS.get(mv.kind, mv.kind), mv.drawing_id, *(Money(mv.amounts_fen.get(b, 0)) for b in COLUMNS),
                         Money(mv.drawn_fen), Money(mv.paid_fen), mv.reference))
    change = {b: sum(mv.amounts_fen.get(b, 0) for mv in st.movements) for b in COLUMNS}
    rows.append(_row("", "本期发生额合计", "", *(Money(change[b]) for b in COLUMNS), Money(st.drawn_fen), Money(st.paid_fen), style="total"))
    rows.append(_buckets("期末余额", st.closing_fen))
    rows += [_row(), _row("本期汇总", style="section"), _row("项目", "金额", style="head")]
    rows += [_row(f"本期计收{CHARGE_LABELS[k]}", Money(st.interest_charged_fen.get(k, 0))) for k in CHARGE_LABELS]
    rows += [_row("本期计收合计", Money(sum(st.interest_charged_fen.values())), style="total"),
             _row("本期放款", Money(st.drawn_fen)), _row("本期还款", Money(st.paid_fen)),
             _row("期初欠款合计", Money(st.opening_total_fen)), _row("期末欠款合计", Money(st.closing_total_fen), style="total")]
    rows += [_row(), _row(f"已计提未结（截至 {st.closed_through.isoformat()}）", style="section"), _row("项目", "金额", style="head")]
    rows += [_row(f"应计{CHARGE_LABELS[k]}", Money(st.accrued_fen.get(k, 0))) for k in CHARGE_LABELS]
    rows += [_row(), _row(f"应还款项（截至 {st.closed_through.isoformat()}）", style="section"), _row(*DUE_HEADER, style="head")]
    rows += [_row(d.drawing_id, d.due_on, DUE_LABELS.get(d.kind, d.kind), Money(d.principal_fen), Money(d.interest_fen),
                  Money(d.principal_fen + d.interest_fen)) for d in st.next_due]
    if not st.next_due:
        rows.append(_row("无"))
    return rows


# --- CSV -----------------------------------------------------------------------------------------


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Money):
        return yuan(cell.fen, grouped=False)
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def to_csv(st: Statement, product_name: str | None = None) -> bytes:
    """The statement as CSV, UTF-8 with a byte-order mark (Excel then reads the Chinese); amounts in 元, e.g. 1234.56."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in sheet(st, product_name):
        writer.writerow([_text(c) for c in row.cells])
    return buffer.getvalue().encode("utf-8-sig")


# --- XLSX ----------------------------------------------------------------------------------------


def to_xlsx(st: Statement, product_name: str | None = None) -> bytes:
    """The statement as an XLSX workbook of one sheet; every amount a number in 元 formatted '#,##0.00', every date a date."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_TITLE
    bold, title = Font(bold=True), Font(bold=True, size=14)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for r, row in enumerate(sheet(st, product_name), start=1):
        for c, value in enumerate(row.cells, start=1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, Money):
                cell.value = yuan_decimal(value.fen)
                cell.number_format = MONEY_FORMAT
            elif isinstance(value, date):
                cell.value = value
                cell.number_format = DATE_FORMAT
            else:
                cell.value = value
            if row.style == "title":
                cell.font = title
            elif row.style in ("section", "total"):
                cell.font = bold
            elif row.style == "head":
                cell.font, cell.fill = bold, fill
    widths = (14, 18, 10, 16, 14, 16, 14, 12, 12, 16, 16, 44)
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- JSON ----------------------------------------------------------------------------------------


def to_json(st: Statement) -> str:
    """The statement as the API answers it (amounts in fen), indented, Chinese kept as it is."""
    return json.dumps(st.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


# --- the terminal --------------------------------------------------------------------------------


def _money_columns(table: Table, names: Sequence[str]) -> None:
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)


def to_table(st: Statement, product_name: str | None = None) -> RenderableType:
    """The statement for the terminal: the header, the movements between the opening and closing balances, the totals, the next dues."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in header_rows(st, product_name):
        head.add_row(label, _shown(value))

    moves = Table(title="交易明细（元）", show_lines=False)
    moves.add_column("日期", no_wrap=True)
    moves.add_column("摘要")
    moves.add_column("借据号", justify="right")
    _money_columns(moves, [*(BUCKET_LABELS[b] for b in COLUMNS), "放款", "还款"])
    moves.add_row("", Text("期初余额", style="bold"), "", *(yuan(st.opening_fen.get(b, 0)) for b in COLUMNS), "", "", end_section=True)
    for mv in st.movements:
        moves.add_row(mv.on_date.isoformat(), MOVEMENT_LABELS.get(mv.kind, mv.kind), str(mv.drawing_id),
                      *(_nonzero(mv.amounts_fen.get(b, 0)) for b in COLUMNS), _nonzero(mv.drawn_fen), _nonzero(mv.paid_fen))
    change = {b: sum(mv.amounts_fen.get(b, 0) for mv in st.movements) for b in COLUMNS}
    moves.add_row("", Text("本期发生额合计", style="bold"), "", *(yuan(change[b]) for b in COLUMNS), yuan(st.drawn_fen), yuan(st.paid_fen),
                  style="bold", end_section=True)
    moves.add_row("", Text("期末余额", style="bold"), "", *(yuan(st.closing_fen.get(b, 0)) for b in COLUMNS), "", "", style="bold")

    totals = Table(title="本期汇总（元）")
    totals.add_column("项目")
    _money_columns(totals, ["金额"])
    for kind, label in CHARGE_LABELS.items():
        totals.add_row(f"本期计收{label}", yuan(st.interest_charged_fen.get(kind, 0)))
    totals.add_row("本期计收合计", yuan(sum(st.interest_charged_fen.values())), style="bold", end_section=True)
    totals.add_row("本期放款", yuan(st.drawn_fen))
    totals.add_row("本期还款", yuan(st.paid_fen))
    totals.add_row("期初欠款合计", yuan(st.opening_total_fen))
    totals.add_row("期末欠款合计", yuan(st.closing_total_fen), style="bold", end_section=True)
    for kind, label in CHARGE_LABELS.items():
        totals.add_row(f"应计{label}（截至 {st.closed_through.isoformat()}，未结）", yuan(st.accrued_fen.get(kind, 0)))

    dues = Table(title=f"应还款项（截至 {st.closed_through.isoformat()}，元）")
    dues.add_column("借据号", justify="right")
    dues.add_column("应还日期", no_wrap=True)
    dues.add_column("类型")
    _money_columns(dues, ["本金", "利息", "合计"])
    for d in st.next_due:
        dues.add_row(str(d.drawing_id), d.due_on.isoformat(), DUE_LABELS.get(d.kind, d.kind), yuan(d.principal_fen), yuan(d.interest_fen),
                     yuan(d.principal_fen + d.interest_fen))
    parts: list[RenderableType] = [Text("对账单", style="bold"), head, moves, totals]
    parts.append(dues if st.next_due else Text("应还款项：无"))
    return Group(*parts)


def _shown(value: Cell) -> str:
    if isinstance(value, Money):
        return f"{yuan(value.fen)} 元"
    return _text(value)


def _nonzero(fen: int) -> str:
    return yuan(fen) if fen else ""


def render(st: Statement, fmt: str, product_name: str | None = None) -> str | bytes | RenderableType:
    """The statement in `fmt` (one of `FORMATS`)."""
    if fmt == "table":
        return to_table(st, product_name)
    if fmt == "csv":
        return to_csv(st, product_name)
    if fmt == "xlsx":
        return to_xlsx(st, product_name)
    if fmt == "json":
        return to_json(st)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
