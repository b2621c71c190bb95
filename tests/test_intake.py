"""Intake without a network: the outcome record, the simulated and file adapters,
read_all's deadlines and threads, and the adapters the settings ask for."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandu.intake import (
    LAYOUTS,
    FileAdapter,
    HttpAdapter,
    IntakeConfigError,
    ReadOutcome,
    Rejection,
    SimulatedAdapter,
    adapters_from_settings,
    deadlines_s,
    gaps,
    payloads_for_profile,
    read_all,
    rows_from_payload,
    write_source_file,
)
from sandu.intake.files import _cell
from sandu.intake.reader import busy_reader_threads
from sandu.settings import Settings
from sandu.simulate.universe import generate, row, source_payloads
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.profile import MAX_SOURCE_INT, build_profile, canonical_sha256

AS_OF = date(2026, 10, 31)
TODAY = date(2026, 11, 29)
TABLE = generate(12, 5, AS_OF)
ROWS = [row(TABLE, i) for i in range(12)]
PAYLOADS = {r["uscc"]: source_payloads(r, AS_OF) for r in ROWS}
U = [r["uscc"] for r in ROWS]


def lookup(uscc: str, source: str):
    return PAYLOADS.get(uscc, {}).get(source)


# ------------------------------------------------------------------ the outcome record


def test_an_outcome_keeps_its_rules():
    o = ReadOutcome("tax", "x", "found", {"a": 1})
    assert o.payload_sha256 == canonical_sha256({"a": 1}) and o.ok
    assert ReadOutcome("tax", "x", "no_record").ok
    for bad in (
        dict(outcome="found"),  # no payload
        dict(outcome="error"),  # no reason
        dict(outcome="no_record", reason="why"),
        dict(outcome="timeout", reason="x", payload={"a": 1}),
        dict(outcome="lost", reason="x"),
        dict(outcome="error", reason="x", duration_ms=float("nan")),
        dict(outcome="error", reason="x", payload_sha256="ab"),
    ):
        with pytest.raises(ValueError):
            ReadOutcome("tax", "x", **bad)


def test_payloads_for_profile_keeps_the_answers_and_gaps_say_the_rest():
    out = {"tax": ReadOutcome("tax", "x", "found", {"a": 1}), "ip": ReadOutcome("ip", "x", "no_record"),
           "utilities": ReadOutcome("utilities", "x", "timeout", reason="late")}
    assert payloads_for_profile(out) == {"tax": {"a": 1}, "ip": None}
    assert gaps(out) == {"utilities": "timeout: late"}


# ------------------------------------------------------------------ the simulated adapter


def test_the_simulated_adapter_reads_what_the_universe_holds():
    a = SimulatedAdapter(lookup)
    for uscc in U:
        out = read_all({s: a for s in ALL_SOURCES}, ALL_SOURCES, uscc, AS_OF, per_source_deadline_s=2, overall_deadline_s=5)
        assert {s: o.payload for s, o in out.items()} == PAYLOADS[uscc]
        assert all(o.outcome == "found" and o.adapter == "simulated" and o.payload_sha256 == canonical_sha256(PAYLOADS[uscc][s])
                   for s, o in out.items())
        assert build_profile(uscc, AS_OF, payloads_for_profile(out)) == build_profile(uscc, AS_OF, PAYLOADS[uscc])


def test_an_in_memory_adapter_is_read_on_the_callers_thread_with_the_same_outcomes():
    """An adapter that says in_memory is read on the calling thread (no hand-off to a reader thread); a threaded
    one is not; both give the same outcomes for the same lookup, also when the lookup fails or finds nothing."""
    threads: dict[tuple[bool, str], str] = {}

    def recording(flag: bool):
        def look(uscc, source):
            threads[(flag, source)] = threading.current_thread().name
            return None if source == "utilities" else (1 / 0 if source == "ip" else PAYLOADS[uscc][source])
        return look

    outs = {flag: read_all({s: SimulatedAdapter(recording(flag), in_memory=flag) for s in ALL_SOURCES}, ALL_SOURCES, U[0], AS_OF,
                           per_source_deadline_s=2, overall_deadline_s=5) for flag in (True, False)}
    me = threading.current_thread().name
    assert all(threads[(True, s)] == me for s in ALL_SOURCES)
    assert all(threads[(False, s)] != me for s in ALL_SOURCES)

    def shown(out):
        return {s: (o.outcome, o.payload, o.adapter, o.reason, o.attempts) for s, o in out.items()}

    assert list(outs[True]) == list(ALL_SOURCES) and shown(outs[True]) == shown(outs[False])
    assert outs[True]["utilities"].outcome == "no_record" and outs[True]["ip"].outcome == "error"
    mixed = read_all({"tax": SimulatedAdapter(lookup, in_memory=True), "ip": SimulatedAdapter(lookup)}, ["ip", "tax", "customs"], U[0], AS_OF,
                     per_source_deadline_s=2, overall_deadline_s=5)
    assert list(mixed) == ["ip", "tax", "customs"] and mixed["customs"].outcome == "refused"
    assert mixed["tax"].payload == PAYLOADS[U[0]]["tax"] and mixed["ip"].payload == PAYLOADS[U[0]]["ip"]


def test_the_simulated_adapter_turns_what_the_lookup_does_into_outcomes():
    def odd(uscc, source):
        return {"tax": None, "ip": [1, 2], "bank_flows": "text"}.get(source) if source != "utilities" else 1 / 0

    a = SimulatedAdapter(odd)
    assert a.read("tax", U[0], AS_OF, 1).outcome == "no_record"
    assert a.read("ip", U[0], AS_OF, 1).outcome == "invalid"
    o = a.read("utilities", U[0], AS_OF, 1)
    assert o.outcome == "error" and "ZeroDivisionError" in o.reason
    assert a.read("weather", U[0], AS_OF, 1).outcome == "refused"
    assert a.read("tax", "123", AS_OF, 1).outcome == "refused"
    assert a.read("tax", U[0], AS_OF, 0).outcome == "timeout"
    with pytest.raises(TypeError):
        SimulatedAdapter({"not": "callable"})


# ------------------------------------------------------------------ the file adapter


def drop_folder(folder: Path, fmt: str) -> None:
    for source in ALL_SOURCES:
        rows = [r for uscc in U for r in rows_from_payload(source, uscc, PAYLOADS[uscc][source])]
        write_source_file(folder, source, rows, fmt)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_the_file_adapter_assembles_what_source_payloads_produces(tmp_path, fmt):
    drop_folder(tmp_path, fmt)
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert any(p["collateral"]["assets"] == [] for p in PAYLOADS.values())  # the no-asset rows are exercised
    for uscc in U:
        for source in ALL_SOURCES:
            o = a.read(source, uscc, AS_OF, 1)
            assert (o.outcome, o.payload) == ("found", PAYLOADS[uscc][source]), (source, uscc)
    assert all(a.rejected(s) == [] for s in ALL_SOURCES)
    absent = str(generate(13, 5, AS_OF)["uscc"][12])
    assert a.read("tax", absent, AS_OF, 1).outcome == "no_record"


def write_csv(folder: Path, source: str, lines: list[str]) -> Path:
    path = folder / f"{source}.csv"
    path.write_text("\n".join([",".join(LAYOUTS[source])] + lines) + "\n", encoding="utf-8")
    return path


def test_malformed_tax_rows_are_rejected_exactly_with_their_reasons(tmp_path):
    u0, u1, u2, u3, u4 = U[:5]
    write_csv(tmp_path, "tax", [
        f"{u0},2023,100,10,5,20,A",  # 1 good
        f"{u0},2024,110,11,5,21,A",  # 2 good
        f"{u0},2025,12.5,11,5,21,A",  # 3 wrong type
        f"{u1},2025,-7,1,1,1,B",  # 4 negative
        ",2025,1,1,1,1,B",  # 5 missing uscc
        f"{u1[:-1]}X,2025,1,1,1,1,B",  # 6 invalid uscc
        f"{u2},2024,1,1,1,1,B",  # 7 duplicate key (with 8)
        f"{u2},2024,2,2,2,2,B",  # 8
        f"{u2},2031,1,1,1,1,B",  # 9 future year
        f"{u2},2023,1,1,1,1,Q",  # 10 unknown grade
        f"{u3},2024,1,1,1,1,A",  # 11 disagrees on the grade with 12
        f"{u3},2025,1,1,1,1,C",  # 12
        f"{u4},2025,1,,1,{MAX_SOURCE_INT + 1},M",  # 13 missing value, too large
        f"{u2},2025,3,3,3,3,B",  # 14 good
        f"{u0},2026,1,1,1,1,A",  # 15 good but not served as of 2026-10-31 (the year is not over)
    ])
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    rejected = a.rejected("tax")
    assert [(j.row, j.column) for j in rejected] == [
        (3, "revenue_fen"), (4, "revenue_fen"), (5, "uscc"), (6, "uscc"), (7, "uscc,year"), (8, "uscc,year"), (9, "year"),
        (10, "tax_credit_grade"), (11, "tax_credit_grade"), (12, "tax_credit_grade"), (13, "vat_fen"), (13, "rd_expense_fen"),
    ]
    reasons = {(j.row, j.column): j.reason for j in rejected}
    assert reasons[(3, "revenue_fen")] == "'12.5' is not a whole number"
    assert reasons[(4, "revenue_fen")] == "-7 is negative"
    assert reasons[(5, "uscc")] == "missing value"
    assert "is not a valid USCC" in reasons[(6, "uscc")]
    assert reasons[(7, "uscc,year")] == "duplicate key (uscc, year): also on row 8"
    assert reasons[(9, "year")] == "year 2031 is in the future (today is 2026-11-29)"
    assert "not a tax credit grade" in reasons[(10, "tax_credit_grade")]
    assert "disagree on its grade (row 11: A, row 12: C)" in reasons[(11, "tax_credit_grade")]
    assert reasons[(13, "rd_expense_fen")] == f"{MAX_SOURCE_INT + 1} is above the largest allowed, {MAX_SOURCE_INT}"

    good = a.read("tax", u0, AS_OF, 1)  # the good rows are served, oldest first, the current year left out
    assert good.outcome == "found" and good.payload == {"tax_credit_grade": "A", "years": [
        {"year": 2023, "revenue_fen": 100, "vat_fen": 10, "cit_fen": 5, "rd_expense_fen": 20},
        {"year": 2024, "revenue_fen": 110, "vat_fen": 11, "cit_fen": 5, "rd_expense_fen": 21}]}
    assert [y["year"] for y in a.read("tax", u0, date(2027, 1, 2), 1).payload["years"]] == [2023, 2024, 2026]
    assert a.read("tax", u2, AS_OF, 1).payload["years"] == [{"year": 2025, "revenue_fen": 3, "vat_fen": 3, "cit_fen": 3, "rd_expense_fen": 3}]
    for uscc, words in ((u1, "row 4 revenue_fen: -7 is negative"), (u3, "row 11 tax_credit_grade"), (u4, "row 13 vat_fen: missing value")):
        o = a.read("tax", uscc, AS_OF, 1)
        assert o.outcome == "invalid" and "every row of this enterprise in tax.csv was rejected" in o.reason and words in o.reason


def test_other_sources_reject_their_malformed_rows(tmp_path):
    u0, u1, u2, u3 = U[:4]
    write_csv(tmp_path, "utilities", [f"{u0},10,9,true", f"{u1},10,9,yes", f"{u2},10,9,0", f"{u3},1e3,9,1"])
    write_csv(tmp_path, "ip", [f"{u0},1,2,3,专精特新;高新技术企业", f"{u1},1,2,3,", f"{u2},1,2,3,a;;b", f"{u3},true,2,3,"])
    write_csv(tmp_path, "collateral", [
        f"{u0},C1,residential,100,50", f"{u0},C2,land_use_right,200,0",
        f"{u1},,,,",  # registered, no assets
        f"{u2},,,,", f"{u2},C1,residential,5,5",  # a no-asset row beside an asset: that row only
        f"{u3},C1,,5,5",  # an asset without a kind
    ])
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert [(j.row, j.column) for j in a.rejected("utilities")] == [(2, "arrears"), (4, "electricity_kwh_12m")]
    assert a.read("utilities", u0, AS_OF, 1).payload == {"electricity_kwh_12m": 10, "electricity_kwh_prev_12m": 9, "arrears": True}
    assert a.read("utilities", u2, AS_OF, 1).payload["arrears"] is False
    assert [(j.row, j.column) for j in a.rejected("ip")] == [(3, "certifications"), (4, "invention_patents")]
    assert a.read("ip", u0, AS_OF, 1).payload["certifications"] == ["专精特新", "高新技术企业"]
    assert a.read("ip", u1, AS_OF, 1).payload["certifications"] == []
    assert [(j.row, j.column, j.reason) for j in a.rejected("collateral")] == [
        (4, "asset_id", "a no-asset row beside the enterprise's assets"), (6, "kind", "missing value")]
    assert a.read("collateral", u0, AS_OF, 1).payload == {"assets": [
        {"id": "C1", "kind": "residential", "appraised_value_fen": 100, "secured_debt_fen": 50},
        {"id": "C2", "kind": "land_use_right", "appraised_value_fen": 200, "secured_debt_fen": 0}]}
    assert a.read("collateral", u1, AS_OF, 1).payload == {"assets": []}
    assert a.read("collateral", u2, AS_OF, 1).payload["assets"][0]["id"] == "C1"
    assert a.read("collateral", u3, AS_OF, 1).outcome == "invalid"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_court_enforcements_are_read_where_the_extract_reports_them(tmp_path, fmt):
    """The bureau's 公共记录 · 强制执行 count is optional: a value is served; an empty cell, or a file without the
    column, is "not reported" (no key, as the bureau payload leaves it out) — never 0; a bad value rejects its row."""
    u0, u1, u2 = U[:3]
    base = {k: v for k, v in PAYLOADS[u0]["credit_bureau"].items() if k != "court_enforcements"}
    write_source_file(tmp_path, "credit_bureau", [{"uscc": u0, **base, "court_enforcements": 2}, {"uscc": u1, **base, "court_enforcements": None},
                                                  {"uscc": u2, **base, "court_enforcements": 0}], fmt)
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert a.read("credit_bureau", u0, AS_OF, 1).payload == {**base, "court_enforcements": 2}
    assert a.read("credit_bureau", u1, AS_OF, 1).payload == base
    assert a.read("credit_bureau", u2, AS_OF, 1).payload == {**base, "court_enforcements": 0}
    assert build_profile(u0, AS_OF, {**PAYLOADS[u0], "credit_bureau": {**base, "court_enforcements": 2}}).features["court_enforcements"] == 2
    (tmp_path / f"credit_bureau.{fmt}").unlink()
    write_source_file(tmp_path, "credit_bureau", [{"uscc": u0, **base}], fmt)
    assert "court_enforcements" not in pl_columns(tmp_path / f"credit_bureau.{fmt}")
    assert FileAdapter(tmp_path, today=lambda: TODAY).read("credit_bureau", u0, AS_OF, 1).payload == base


def test_a_bad_court_enforcements_cell_rejects_its_row(tmp_path):
    u0, u1 = U[:2]
    path = tmp_path / "credit_bureau.csv"
    head = ",".join([*LAYOUTS["credit_bureau"], "court_enforcements"])
    path.write_text(f"{head}\n{u0},1,0,0,0,0,-1\n{u1},1,0,0,0,0,1\n", encoding="utf-8")
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert [(j.row, j.column, j.reason) for j in a.rejected("credit_bureau")] == [(1, "court_enforcements", "-1 is negative")]
    assert a.read("credit_bureau", u1, AS_OF, 1).payload["court_enforcements"] == 1


def pl_columns(path: Path) -> list[str]:
    import polars as pl

    return {"csv": pl.read_csv, "parquet": pl.read_parquet, "json": pl.read_json}[path.suffix[1:]](path).columns


def test_typed_parquet_cells_are_checked_as_text(tmp_path):
    import polars as pl

    pl.DataFrame({"uscc": [U[0], U[1], U[2]], "months": [12.0, 12.5, 12.0], "inflow_fen": [5, 6, 7], "outflow_fen": [1, 2, 3]}).with_columns(
        pl.col("months").cast(pl.Int64, strict=False).alias("m2")).write_parquet(tmp_path / "bank_flows.parquet")
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert [(j.row, j.reason) for j in a.rejected("bank_flows")] == [(1, "'12.0' is not a whole number"), (2, "'12.5' is not a whole number"),
                                                                        (3, "'12.0' is not a whole number")]


def test_the_file_is_read_again_when_it_changes(tmp_path):
    path = write_csv(tmp_path, "bank_flows", [f"{U[0]},12,100,90"])
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    assert a.read("bank_flows", U[0], AS_OF, 1).payload["inflow_fen"] == 100
    assert a.read("bank_flows", U[1], AS_OF, 1).outcome == "no_record"
    before = path.stat().st_mtime_ns
    write_csv(tmp_path, "bank_flows", [f"{U[0]},12,200,90", f"{U[1]},12,-1,1"])
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    assert a.read("bank_flows", U[0], AS_OF, 1).payload["inflow_fen"] == 200
    assert a.read("bank_flows", U[1], AS_OF, 1).outcome == "invalid"
    assert a.rejected("bank_flows") == [Rejection(2, "inflow_fen", "-1 is negative")]


def test_a_file_that_cannot_be_used_is_an_error_of_its_source(tmp_path):
    a = FileAdapter(tmp_path, today=lambda: TODAY)
    o = a.read("tax", U[0], AS_OF, 1)
    assert o.outcome == "error" and "no file tax.csv, tax.parquet or tax.json" in o.reason
    (tmp_path / "invoices.csv").write_text(f"uscc,months\n{U[0]},12\n")
    assert "lacks the columns sales_invoice_fen, sales_invoice_count, customer_count" in a.read("invoices", U[0], AS_OF, 1).reason
    write_csv(tmp_path, "ip", [])
    (tmp_path / "ip.json").write_text("[]")
    assert "more than one file for ip" in a.read("ip", U[0], AS_OF, 1).reason
    (tmp_path / "bank_flows.parquet").write_bytes(b"not parquet at all")
    o = a.read("bank_flows", U[0], AS_OF, 1)
    assert o.outcome == "error" and "cannot read bank_flows.parquet" in o.reason
    (tmp_path / "utilities.json").write_text('[{"uscc": "x", "electricity_kwh_12m": [1]}]')
    assert a.read("utilities", U[0], AS_OF, 1).outcome == "error"
    assert a.read("tax", "nope", AS_OF, 1).outcome == "refused"


@given(st.text(max_size=25) | st.integers(-10, 10**16).map(str))
def test_a_count_cell_is_a_plain_whole_number_in_range_or_a_reason(text):
    value, why = _cell("int", text, TODAY)
    plain = text.isascii() and text.isdigit()
    assert (why == "") == (plain and int(text) <= MAX_SOURCE_INT)
    if not why:
        assert value == int(text)


# ------------------------------------------------------------------ read_all


class Sleepy:
    """An adapter that takes `delay[source]` seconds (not honouring its timeout) or waits on `gate`."""

    name = "sleepy"

    def __init__(self, delay: dict[str, float], gate: threading.Event | None = None):
        self.delay, self.gate = delay, gate

    def read(self, source, uscc, as_of, timeout_s):
        d = self.delay.get(source, 0.0)
        if d < 0:
            self.gate.wait()
        time.sleep(max(d, 0))
        if source == "ip":
            raise RuntimeError("an adapter that raises")
        return ReadOutcome(source, self.name, "found", {"s": source, "timeout_s": timeout_s})


def test_read_all_waits_no_longer_than_the_deadlines_whatever_the_adapters_do():
    gate = threading.Event()
    a = Sleepy({"tax": -1, "utilities": 0.8}, gate)
    adapters = {s: a for s in ALL_SOURCES if s != "collateral"}
    try:
        t0 = time.monotonic()
        out = read_all(adapters, ALL_SOURCES, U[0], AS_OF, per_source_deadline_s={"utilities": 0.25, "tax": 0.3}, overall_deadline_s=0.4)
        elapsed = time.monotonic() - t0
        assert elapsed < 0.4 + 0.2
        assert list(out) == list(ALL_SOURCES)
        assert out["utilities"].outcome == "timeout" and out["utilities"].reason == "no answer within the source's deadline of 250 ms"
        assert out["tax"].outcome == "timeout" and "the source's deadline of 300 ms" in out["tax"].reason
        assert out["ip"].outcome == "error" and "RuntimeError: an adapter that raises" in out["ip"].reason
        assert out["collateral"].outcome == "refused" and "no adapter serves 'collateral'" in out["collateral"].reason
        assert 0 < out["invoices"].payload["timeout_s"] <= 0.4  # the exact figure: the frozen-clock test below
        assert {out[s].outcome for s in ("invoices", "social_insurance", "credit_bureau", "bank_flows")} == {"found"}

        t0 = time.monotonic()  # the hung read holds neither a later call nor its threads
        again = read_all(adapters, ["bank_flows", "invoices"], U[0], AS_OF, per_source_deadline_s=1, overall_deadline_s=1)
        assert [o.outcome for o in again.values()] == ["found", "found"] and time.monotonic() - t0 < 0.6  # waiting on the hung read: ≥ 1 s
        assert busy_reader_threads() >= 1  # the hung one
    finally:
        gate.set()
    deadline = time.monotonic() + 3
    while busy_reader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert busy_reader_threads() == 0


def test_each_read_is_given_its_own_deadline_capped_by_what_is_left_of_the_overall():
    """With a clock that moves 0.1 s after the call begins and then stands still, the time each
    adapter is given is exact (no scheduling in it): min(own deadline, overall - 0.1)."""
    lock, calls = threading.Lock(), []

    def clock():
        with lock:
            calls.append(None)
            return 100.0 if len(calls) == 1 else 100.1

    a = Sleepy({})
    sources = ["invoices", "tax", "bank_flows", "social_insurance"]
    out = read_all({s: a for s in sources}, sources, U[0], AS_OF, clock=clock, overall_deadline_s=0.4,
                   per_source_deadline_s={"invoices": 5, "tax": 0.2, "bank_flows": 0.3})
    allowed = {s: out[s].payload["timeout_s"] for s in sources}
    assert allowed == pytest.approx({"invoices": 0.3, "tax": 0.2, "bank_flows": 0.3, "social_insurance": 0.3}, abs=1e-9)
    assert allowed["tax"] < allowed["invoices"]  # its own deadline, not the overall's rest


def test_more_sources_than_workers_still_end_by_the_overall_deadline():
    a = Sleepy(dict.fromkeys(ALL_SOURCES, 0.15) | {"ip": 0})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sandu.intake.reader.MAX_WORKERS", 2)
        t0 = time.monotonic()
        out = read_all({s: a for s in ALL_SOURCES}, ALL_SOURCES, U[0], AS_OF, per_source_deadline_s=1, overall_deadline_s=0.4)
    assert time.monotonic() - t0 < 0.4 + 0.2
    late = [s for s, o in out.items() if o.outcome == "timeout"]
    assert late and all("overall deadline of 400 ms" in out[s].reason for s in late)
    assert [out[s].outcome for s in ("tax", "invoices", "social_insurance", "utilities")] == ["found"] * 4
    assert out["collateral"].outcome == "timeout" and out["collateral"].attempts == 0  # its turn came after the deadline: never started
    assert out["bank_flows"].outcome == "timeout" and out["bank_flows"].attempts == 1  # begun, not finished


def test_read_all_refuses_a_bad_call():
    with pytest.raises(ValueError):
        read_all({}, ["tax", "tax"], U[0], AS_OF, per_source_deadline_s=1, overall_deadline_s=1)
    with pytest.raises(ValueError):
        read_all({}, ["tax"], U[0], AS_OF, per_source_deadline_s=1, overall_deadline_s=0)
    with pytest.raises(ValueError):
        read_all({}, ["tax"], U[0], AS_OF, per_source_deadline_s={"tax": -1}, overall_deadline_s=1)


def test_a_hung_read_does_not_hold_the_process_at_exit():
    code = (
        "import threading, time\n"
        "from datetime import date\n"
        "from sandu.intake import read_all, ReadOutcome\n"
        "class Hang:\n"
        "    name = 'hang'\n"
        "    def read(self, source, uscc, as_of, timeout_s):\n"
        "        threading.Event().wait(60)\n"
        f"out = read_all({{'tax': Hang()}}, ['tax'], {U[0]!r}, date(2026, 10, 31), per_source_deadline_s=0.2, overall_deadline_s=0.3)\n"
        "print(out['tax'].outcome)\n"
    )
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "timeout"
    assert time.monotonic() - t0 < 20  # not the 60 s of the hung read (the interpreter's start-up is the rest)


# ------------------------------------------------------------------ settings


def test_the_settings_choose_an_adapter_per_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDU_SOURCE_ADAPTERS", '{"credit_bureau": "http", "bank_flows": "http", "collateral": "file"}')
    monkeypatch.setenv("SANDU_SOURCES_HTTP_URL", "http://127.0.0.1:9/bureau")
    monkeypatch.setenv("SANDU_SOURCES_FILE_DIR", str(tmp_path))
    monkeypatch.setenv("SANDU_SOURCE_DEADLINES_MS", '{"credit_bureau": 3000}')
    s = Settings()
    adapters = adapters_from_settings(s, lookup)
    assert {k: v.name for k, v in adapters.items()} == {
        "tax": "simulated", "invoices": "simulated", "social_insurance": "simulated", "utilities": "simulated", "ip": "simulated",
        "credit_bureau": "http", "bank_flows": "http", "collateral": "file"}
    assert adapters["credit_bureau"] is adapters["bank_flows"] and isinstance(adapters["bank_flows"], HttpAdapter)
    assert adapters["tax"] is adapters["ip"]
    per, overall = deadlines_s(s)
    assert per["credit_bureau"] == 3.0 and per["tax"] == 2.0 and overall == 5.0
    assert adapters["credit_bureau"].retries == 2 and adapters["credit_bureau"].read_timeout_s == 3.0


def test_the_default_is_the_simulated_universe_and_bad_settings_are_named(tmp_path):
    adapters = adapters_from_settings(Settings(), lookup)
    assert {a.name for a in adapters.values()} == {"simulated"} and set(adapters) == set(ALL_SOURCES)
    with pytest.raises(IntakeConfigError, match="SANDU_SOURCE_ADAPTERS names weather"):
        adapters_from_settings(Settings(source_adapters={"weather": "http"}), lookup)
    with pytest.raises(IntakeConfigError, match="SANDU_SOURCES_HTTP_URL must be set"):
        adapters_from_settings(Settings(sources_adapter="http"), lookup)
    with pytest.raises(IntakeConfigError, match="SANDU_SOURCES_HTTP_URL"):
        adapters_from_settings(Settings(sources_adapter="http", sources_http_url="file:///etc"), lookup)
    with pytest.raises(IntakeConfigError, match="SANDU_SOURCES_FILE_DIR"):
        adapters_from_settings(Settings(sources_adapter="file", sources_file_dir=tmp_path / "absent"), lookup)
    with pytest.raises(IntakeConfigError, match="SANDU_SOURCE_DEADLINES_MS"):
        deadlines_s(Settings(source_deadlines_ms={"weather": 100}))
    with pytest.raises(ValueError):
        Settings(source_adapters={"tax": "ftp"})
    with pytest.raises(ValueError):
        Settings(source_deadlines_ms={"tax": 1})


def test_a_full_pool_refuses_rather_than_queues_behind_hung_reads():
    from sandu.intake import reader

    gate = threading.Event()
    small = reader._DaemonPool(2, 0.05)
    a = Sleepy({"tax": -1, "ip": -1}, gate)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reader, "_POOL", small)
        try:
            out = read_all({s: a for s in ("tax", "ip")}, ["tax", "ip"], U[0], AS_OF, per_source_deadline_s=0.1, overall_deadline_s=0.2)
            assert [o.outcome for o in out.values()] == ["timeout", "timeout"] and small.busy() == 2
            out = read_all({"invoices": a}, ["invoices"], U[0], AS_OF, per_source_deadline_s=0.1, overall_deadline_s=0.2)
            assert out["invoices"].outcome == "refused" and "no reader thread free" in out["invoices"].reason
        finally:
            gate.set()
        deadline = time.monotonic() + 3
        while small.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        out = read_all({"invoices": a}, ["invoices"], U[0], AS_OF, per_source_deadline_s=0.5, overall_deadline_s=0.5)
        assert out["invoices"].outcome == "found"  # the threads came back to the pool
        time.sleep(0.2)
        assert small.busy() == 0 and small._threads == 0  # and idle ones end
