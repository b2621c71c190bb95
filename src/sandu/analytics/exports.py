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


# -- the portfolio report -------------------------------------------------------------------------------------

DIMENSION_ZH = {"product": "按产品", "branch": "按支行", "industry": "按行业", "tech_grade": "按科创等级", "risk_grade": "按风险等级"}
CLASS_ZH = {"normal": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑", "loss": "损失"}
YI_FORMAT = '#,##0.0000"亿"'


def _wan(fen: int) -> Decimal:
    return Decimal(fen) / FEN_PER_WAN


def portfolio_rows(p: Any) -> list[dict[str, Any]]:
    """Every row of every dimension, for a CSV."""
    return [{"as_of": p.as_of.isoformat(), "branch": p.branch or "", "dimension": dim, **r.to_json()} for dim, rows in p.by.items() for r in rows]


STATE_ZH = {"current": "未逾期", "1-30": "逾期1-30天", "31-60": "逾期31-60天", "61-90": "逾期61-90天", "91-180": "逾期91-180天",
            "180+": "逾期180天以上", "paid_off": "结清"}
DELINQUENCY_FIELDS = ["as_of", "branch", "view", "period_from", "period_to", "from", "to", "measure", "value"]


def delinquency_rows(p: Any) -> list[dict[str, Any]]:
    """The delinquency views in long form, for a CSV: DPD buckets, roll rates, stage movement (one figure a row)."""
    base = {"as_of": p.as_of.isoformat(), "branch": p.branch or ""}
    day = p.as_of.isoformat()
    rows = [{**base, "view": "dpd_bucket", "period_from": day, "period_to": day, "from": b, "to": "", "measure": k, "value": v}
            for b, figures in p.dpd_buckets.items() for k, v in figures.items()]
    for r in p.roll_rates:
        rows += [{**base, "view": "roll_rate", "period_from": r["from"], "period_to": r["to"], "from": a, "to": b, "measure": measure, "value": v}
                 for measure in ("count", "principal_fen") for a, to in r[measure].items() for b, v in to.items()]
    mv = p.stage_movement
    if mv is not None:
        period = {"period_from": mv["from"], "period_to": mv["to"]}
        rows += [{**base, "view": "stage_movement", **period, "from": a, "to": b, "measure": k, "value": v}
                 for a, to in mv["matrix"].items() for b, cell in to.items() for k, v in cell.items()]
        rows += [{**base, "view": f"stage_{part}", **period, "from": "" if part == "new" else st, "to": st if part == "new" else "",
                  "measure": k, "value": v} for part in ("new", "derecognised") for st, cell in mv[part].items() for k, v in cell.items()]
    return rows


def delinquency_path(path: Path) -> Path:
    """Where a CSV report writes its delinquency views: beside it, ``{stem}-delinquency.csv``."""
    return path.with_name(f"{path.stem}-delinquency.csv")


def _delinquency_sheets(wb: Workbook, p: Any) -> None:
    buckets = [[STATE_ZH[b], f["drawings"], _wan(f["principal_fen"]), _wan(f["overdue_fen"]), _wan(f["receivable_fen"])]
               for b, f in p.dpd_buckets.items()]
    _sheet(wb, "逾期天数分布", ["逾期天数", "借据笔数", "贷款余额（万元）", "逾期本息（万元）", "应收本息（万元）"], buckets,
           [None, "#,##0", WAN_FORMAT, WAN_FORMAT, WAN_FORMAT])
    rolls = []
    for r in p.roll_rates:
        for a, to in r["count"].items():
            rolls.append([r["from"], r["to"], STATE_ZH[a], *(to[b] for b in to), *(_wan(r["principal_fen"][a][b]) for b in to)])
    states = list(STATE_ZH)
    _sheet(wb, "迁徙率", ["月末", "下一月末", "月末状态", *(f"→{STATE_ZH[b]}（笔）" for b in states),
                       *(f"→{STATE_ZH[b]}（万元）" for b in states)], rolls,
           [None, None, None, *(["#,##0"] * len(states)), *([WAN_FORMAT] * len(states))])
    mv = p.stage_movement
    if mv is not None:
        rows = [[f"阶段{a}", f"阶段{b}", c["exposures"], _wan(c["ead_from_fen"]), _wan(c["ead_to_fen"]), _wan(c["ecl_from_fen"]),
                 _wan(c["ecl_to_fen"])] for a, to in mv["matrix"].items() for b, c in to.items()]
        rows += [["新增", f"阶段{st}", c["exposures"], None, _wan(c["ead_fen"]), None, _wan(c["ecl_fen"])] for st, c in mv["new"].items()]
        rows += [[f"阶段{st}", "终止确认", c["exposures"], _wan(c["ead_fen"]), None, _wan(c["ecl_fen"]), None] for st, c in mv["derecognised"].items()]
        _sheet(wb, "阶段迁移", [f"{mv['from']} 阶段", f"{mv['to']} 阶段", "敞口笔数", "期初 EAD（万元）", "期末 EAD（万元）", "期初 ECL（万元）",
                            "期末 ECL（万元）"], rows, [None, None, "#,##0", WAN_FORMAT, WAN_FORMAT, WAN_FORMAT, WAN_FORMAT])


def write_portfolio(p: Any, path: Path) -> None:
    """The report as `path`'s format says: xlsx (汇总, one sheet per dimension with a bar chart, 五级分类, provisions, DPD
    buckets, roll rates, stage movement), csv (every dimension's rows; the delinquency views in long form beside it,
    `delinquency_path`), json."""
    import csv

    from openpyxl.chart import BarChart, PieChart, Reference

    kind = format_of(path)
    if kind == "json":
        path.write_text(json.dumps(p.to_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        return
    if kind == "csv":
        rows = portfolio_rows(p)
        with path.open("w", newline="", encoding="utf-8-sig") as f:  # with a BOM: Excel opens the Chinese as it is
            w = csv.DictWriter(f, fieldnames=["as_of", "branch", "dimension", "key", "lines", "limit_fen", "principal_fen", "receivable_fen"])
            w.writeheader()
            w.writerows(rows)
        with delinquency_path(path).open("w", newline="", encoding="utf-8-sig") as f:
            w = csv.DictWriter(f, fieldnames=DELINQUENCY_FIELDS)
            w.writeheader()
            w.writerows(delinquency_rows(p))
        return
    wb = Workbook()
    wb.remove(wb.active)
    pct = (lambda r: None if r is None else float(r))  # noqa: E731
    summary = [
        ["报告日", p.as_of.isoformat(), None], ["范围", p.branch or "全行", None], ["授信户数（额度笔数）", p.lines, "#,##0"],
        ["授信额度（亿元）", Decimal(p.limit_fen) / 10**10, YI_FORMAT], ["贷款余额（亿元）", Decimal(p.principal_fen) / 10**10, YI_FORMAT],
        ["科技型贷款余额（亿元）", Decimal(p.tech_principal_fen) / 10**10, YI_FORMAT], ["科技型贷款同比增长", pct(p.tech_growth), "0.00%"],
        ["科技型贷款占比", pct(p.tech_share), "0.00%"], ["普惠型小微贷款余额（万元）", _wan(p.inclusive_principal_fen), WAN_FORMAT],
        ["普惠型小微户数", p.inclusive_borrowers, "#,##0"], ["不良贷款率", pct(p.npl_ratio), "0.00%"], ["逾期本息（万元）", _wan(p.overdue_fen), WAN_FORMAT],
        ["测额至首笔放款（中位数，小时）", None if p.time_to_cash_s.get("p50") is None else p.time_to_cash_s["p50"] / 3600, "0.0"],
    ]
    _sheet(wb, "汇总", ["指标", "数值"], [[a, b] for a, b, _ in summary], [None, None])
    ws = wb["汇总"]
    for row, (_, _, fmt) in enumerate(summary, start=2):
        if fmt:
            ws[f"B{row}"].number_format = fmt
    for dim, rows in p.by.items():
        title = DIMENSION_ZH[dim]
        _sheet(wb, title, ["分组", "额度笔数", "授信额度（万元）", "贷款余额（万元）", "应收本息（万元）"],
               [[r.key, r.lines, _wan(r.limit_fen), _wan(r.principal_fen), _wan(r.receivable_fen)] for r in rows],
               [None, "#,##0", WAN_FORMAT, WAN_FORMAT, WAN_FORMAT])
        if rows:
            sheet = wb[title]
            chart = BarChart()
            chart.title, chart.y_axis.title = f"贷款余额{title}", "万元"
            chart.add_data(Reference(sheet, min_col=4, min_row=1, max_row=len(rows) + 1), titles_from_data=True)
            chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=len(rows) + 1))
            sheet.add_chart(chart, "G2")
    classes = [[CLASS_ZH.get(c, c), _wan(v)] for c, v in p.class_principal_fen.items()]
    _sheet(wb, "五级分类", ["分类", "贷款余额（万元）"], classes, [None, WAN_FORMAT])
    pie = PieChart()
    pie.title = "五级分类"
    sheet = wb["五级分类"]
    pie.add_data(Reference(sheet, min_col=2, min_row=1, max_row=len(classes) + 1), titles_from_data=True)
    pie.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=len(classes) + 1))
    sheet.add_chart(pie, "D2")
    shares = [[b, pct(s)] for b, s in p.tech_share_by_branch.items()]
    _sheet(wb, "科技型占比", ["支行", "科技型贷款占比"], shares, [None, "0.00%"])
    if p.expected_loss is not None:  # provisions as of the day
        rows = [[f"{label} {key}", _wan(v["ead_fen"]), _wan(v["ecl_fen"])] for label, part in (("阶段", "by_stage"), ("产品", "by_product"),
                                                                                              ("支行", "by_branch"))
                for key, v in p.expected_loss[part].items()]
        rows.append(["合计", _wan(p.expected_loss["ead_fen"]), _wan(p.expected_loss["ecl_fen"])])
        _sheet(wb, "预期信用损失", ["分组", "风险敞口 EAD（万元）", "预期信用损失 ECL（万元）"], rows, [None, WAN_FORMAT, WAN_FORMAT])
    _delinquency_sheets(wb, p)
    wb.save(path)
