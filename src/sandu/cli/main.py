"""The `sandu` command line. Thin: parse, call one service, render."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sandu.domain.errors import SanduError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="sandu (三度): credit for technology SMEs.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
users_app = typer.Typer(no_args_is_help=True, help="Users: create staff, list, disable.")
app.add_typer(users_app, name="users")
authz_app = typer.Typer(no_args_is_help=True, help="The authorization table.")
app.add_typer(authz_app, name="authz")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")
app.add_typer(audit_app, name="audit")
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

DEFAULT_AS_OF = "2026-10-31"
DEMO_USERS_FILE = Path("var/demo-users.txt")


def _fail(message: str, code: int = 2) -> None:
    """The one line a refused command prints (never wrapped at the terminal's width: it may name a long path)."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # the message as it is: no markup read in it
    raise typer.Exit(code)


def _runtime():
    from sandu.runtime import make_runtime

    return make_runtime()


def _parse_date(value: str, field: str) -> date:
    from sandu.domain.dates import parse_iso_date

    try:
        return parse_iso_date(value)
    except ValueError as exc:
        _fail(f"{field}: {exc} (allowed: YYYY-MM-DD)")
        raise  # unreachable


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest revision."""
    rt = _runtime()
    rev = rt.upgrade_schema()
    console.print(f"schema at revision [bold]{rev}[/] ({rt.store_label()})")


@app.command()
def simulate(
    enterprises: Annotated[int, typer.Option("--enterprises", "-n", help="How many enterprises to generate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same universe.")] = 42,
    as_of: Annotated[str, typer.Option(help="Data as-of date (YYYY-MM-DD).")] = DEFAULT_AS_OF,
    out: Annotated[Optional[Path], typer.Option(help="Write a Parquet file instead of the store.")] = None,
    training_history: Annotated[Optional[Path], typer.Option("--training-history", help="Write a scorecard's training history instead: profile features + default_12m (CSV or Parquet).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Run the seeded store forward --months months instead (demo and test stores only).")] = False,
    months: Annotated[Optional[int], typer.Option("--months", help="With --history: how many months to simulate.")] = None,
) -> None:
    """Build the deterministic synthetic universe (plus the five story enterprises); or, with --history --months N, run the
    seeded store forward N months from its business date: applications, draws, repayments and defaults driven by each
    enterprise's latent risk, through the real services and the real end of day."""
    if months is not None and not history:
        _fail("--months needs --history (it says how far to run the store forward)")
    if history:
        if out is not None or training_history is not None:
            _fail("--history runs the store forward: give it without --out and --training-history")
        if months is None:
            _fail("--history needs --months N (how many months to run the store forward)")
        _run_history(months, seed)
        return
    from sandu.simulate.universe import MAX_ENTERPRISES, MAX_PARTED

    if not 0 <= enterprises <= (MAX_PARTED if out is not None else MAX_ENTERPRISES):  # a file is written part by part
        allowed = f"0..{MAX_PARTED:,} with --out" if out is not None else f"0..{MAX_ENTERPRISES:,} (a Parquet file, --out: 0..{MAX_PARTED:,})"
        _fail(f"--enterprises: must be within {allowed}, got {enterprises:,}")
    day = _parse_date(as_of, "--as-of")
    if training_history is not None:
        from sandu.demo.seed import history_frame
        from sandu.scoring.tables import TableError, write_table

        if out is not None:
            _fail("--training-history: give either --out or --training-history")
        with Progress(TextColumn("profiles"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err) as bar:
            task = bar.add_task("profiles", total=enterprises)
            frame = history_frame(enterprises, seed, day, progress=lambda k: bar.advance(task, k))
        try:
            write_table(frame, training_history, "--training-history")
        except TableError as exc:
            _fail(str(exc))
        console.print(f"wrote the history of {frame.height:,} enterprises ({frame['default_12m'].sum():,} defaults) to {training_history}")
        return
    if out is not None:
        if out.suffix != ".parquet":
            _fail(f"--out: {out} must end in .parquet")
        from sandu.demo.seed import write_universe
        from sandu.simulate.stories import STORY_ROWS

        out.parent.mkdir(parents=True, exist_ok=True)
        with Progress(TextColumn("enterprises"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err) as bar:
            task = bar.add_task("enterprises", total=enterprises + len(STORY_ROWS))
            written = write_universe(out, enterprises, seed, day, progress=lambda k: bar.advance(task, k))
        console.print(f"wrote {written:,} enterprises to {out}")
        return
    from sandu.demo.seed import seed_universe

    rt = _runtime()
    rt.upgrade_schema()
    with Progress(TextColumn("seeding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("seed", total=enterprises)
        added = seed_universe(rt.uow, enterprises, seed, day, progress=lambda k: bar.advance(task, k))
    console.print(f"added {added:,} enterprises to the store (existing USCCs kept)")


def _run_history(months: int, seed: int) -> None:
    """`sandu simulate --history`: the store run forward day by day, a progress bar by day, a summary at the end."""
    from sandu.demo.history import history_days, run_history
    from sandu.domain.errors import InvalidInput
    from sandu.domain.money import format_cn
    from sandu.servicing.calendar import business_day, calendar_row

    rt = _runtime()
    with rt.uow.read() as s:
        start = business_day(rt.now(), calendar_row(s).last_closed_on)
    try:
        total = len(history_days(start, months))
    except InvalidInput as exc:
        _fail(f"--months: {exc.message} (allowed: {exc.allowed})")
    with Progress(TextColumn("history {task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[book]}"), TimeElapsedColumn(),
                  console=err, disable=not err.is_terminal) as bar:
        task = bar.add_task(start.isoformat(), total=total, book="")

        def progress(day: date, r) -> None:
            bar.update(task, advance=1, description=day.isoformat(), book=f"{r.lines_opened:,} lines, {r.draws:,} draws, {r.repayments:,} repayments")

        r = run_history(rt, months=months, seed=seed, progress=progress)
    console.print(f"history of {months} month{'s' if months != 1 else ''}: {r.first_day} → {r.last_day} ({r.days} days closed by end of day); "
                  f"last closed {r.last_day}")
    console.print(f"{r.applications:,} applications ({', '.join(f'{k} {v:,}' for k, v in sorted(r.outcomes.items()))}); "
                  f"{r.lines_opened:,} lines opened, {r.closes:,} closed; {r.draws:,} draws ({format_cn(r.drawn_fen)}), "
                  f"{r.repayments:,} repayments ({format_cn(r.repaid_fen)}); {r.users_created:,} applicants made")
    if r.refused:
        console.print("refused by the services: " + ", ".join(f"{k} × {v}" for k, v in sorted(r.refused.items())))


model_app = typer.Typer(no_args_is_help=True, help="Risk scorecards: train on history, score a file, report on performance.")
app.add_typer(model_app, name="model")


def _columns(value: Optional[str]) -> tuple[str, ...]:
    return tuple(c.strip() for c in value.split(",") if c.strip()) if value else ()


def _model_errors():
    """The model commands' own errors, each printed as one clear line (never a traceback)."""
    from sandu.scoring.scorecard import ArtifactError, ScoringInputError
    from sandu.scoring.tables import TableError

    return (ArtifactError, ScoringInputError, TableError)


@model_app.command("train")
def model_train(
    data: Annotated[Path, typer.Option(help="History to train on: a CSV or Parquet file, one row per borrower.")],
    target: Annotated[str, typer.Option(help="The outcome column.")],
    bad: Annotated[str, typer.Option(help="The outcome value that marks a bad (compared as text, e.g. 1, true, bad).")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON artifact.")],
    features: Annotated[Optional[str], typer.Option(help="Comma-separated candidate columns (default: all but the target).")] = None,
    exclude: Annotated[Optional[str], typer.Option(help="Comma-separated columns to leave out (ids, leaks).")] = None,
    monotonic: Annotated[str, typer.Option(help="auto: bad rate monotonic (or peaked) over a numeric feature; none: free bins.")] = "auto",
    special: Annotated[Optional[str], typer.Option(help="Comma-separated numeric codes binned apart (e.g. -999).")] = None,
    pdo: Annotated[float, typer.Option(help="Points to double the odds.")] = 20.0,
    base_odds: Annotated[float, typer.Option(help="Good:bad odds at the base score.")] = 50.0,
    base_score: Annotated[float, typer.Option(help="Score at the base odds.")] = 600.0,
    min_iv: Annotated[float, typer.Option(help="Drop features with a lower information value.")] = 0.02,
    max_corr: Annotated[float, typer.Option(help="Drop a feature whose WOE correlates more with a stronger one.")] = 0.7,
    min_bin_share: Annotated[float, typer.Option(help="Each bin holds at least this share of the rows.")] = 0.02,
    name: Annotated[str, typer.Option(help="The model's name.")] = "risk-scorecard",
    version: Annotated[str, typer.Option(help="The model's version.")] = "1",
    labels: Annotated[Optional[Path], typer.Option(help="JSON object feature → words, used in reasons.")] = None,
) -> None:
    """Train a WOE logistic-regression scorecard and write its deterministic JSON artifact."""
    import json as _json

    from sandu.scoring.tables import read_table
    from sandu.scoring.train import TrainingError, TrainOptions, dumps, train

    try:
        specials = tuple(float(v) for v in _columns(special))
    except ValueError:
        _fail(f"--special: {special!r} must be comma-separated numbers")
    words: dict[str, str] = {}
    if labels is not None:
        try:
            words = _json.loads(labels.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _fail(f"--labels: cannot read {labels} as JSON: {exc}")
        if not isinstance(words, dict) or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(v) <= 200 for k, v in words.items()):
            _fail("--labels: must be a JSON object of feature name → words (1..200 characters)")
    opts = TrainOptions(target=target, bad=bad, features=_columns(features), exclude=_columns(exclude), monotonic=monotonic,
                        special_values=specials, min_iv=min_iv, max_corr=max_corr, min_bin_share=min_bin_share, pdo=pdo,
                        base_odds=base_odds, base_score=base_score, name=name, version=version, labels=words)
    try:
        frame, digest = read_table(data)
        with Progress(TextColumn("binning {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err) as bar:
            task = bar.add_task("", total=None)

            def step(feature: str, done: int, total: int) -> None:
                bar.update(task, description=feature, completed=done, total=total)

            artifact = train(frame, opts, data_hash=digest, progress=step)
    except (TrainingError, *_model_errors()) as exc:
        _fail(str(exc))
        raise  # unreachable
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dumps(artifact), encoding="utf-8")
    except OSError as exc:
        _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
    t = Table(title=f"{artifact['name']}@{artifact['version']} · {len(artifact['features'])} features")
    for col in ("feature", "IV", "coef", "bins", "points range"):
        t.add_column(col, justify="left" if col == "feature" else "right")
    for f in artifact["features"]:
        pts = [b["points"] for b in f["bins"]]
        t.add_row(f["name"], f"{f['iv']:.4f}", f"{f['coef']:.4f}", str(len(f["bins"])), f"{min(pts):.1f} … {max(pts):.1f}")
    console.print(t)
    for d in artifact["selection"]["dropped"]:
        console.print(f"  dropped {d['feature']}: {d['reason']}")
    m_ = artifact["metrics"]["train"]
    console.print(f"train AUC {m_['auc']:.4f} · Gini {m_['gini']:.4f} · KS {m_['ks']:.4f} on {m_['rows']:,} rows ({m_['bad']:,} bad)")
    console.print(f"wrote {out} (sha256 {artifact['sha256'][:16]}…)")


@model_app.command("score")
def model_score(
    model: Annotated[Path, typer.Option(help="The scorecard artifact (JSON).")],
    data: Annotated[Optional[Path], typer.Option(help="Records to score: CSV or Parquet.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Where to write the records with score, pd and reason_1..3 (CSV or Parquet).")] = None,
    record: Annotated[Optional[str], typer.Option(help="Or one record as a JSON object of feature → value; prints its score.")] = None,
) -> None:
    """Score a file (or one record) with the artifact alone; rows keep their order."""
    import json as _json

    from sandu.scoring.scorecard import read_scorecard, score_frame, score_record
    from sandu.scoring.tables import read_table, write_table

    if (record is None) == (data is None) or (data is not None and out is None) or (record is not None and out is not None):
        _fail("give either --data FILE --out FILE, or --record JSON")
    try:
        card = read_scorecard(model)
        if record is not None:
            try:
                values = _json.loads(record)
            except ValueError as exc:
                _fail(f"--record: not JSON: {exc}")
            if not isinstance(values, dict):
                _fail("--record: must be a JSON object of feature → value")
            r = score_record(card, values)
            console.print_json(_json.dumps({"model": card.label, "score": r.points, "pd": r.pd, "reasons": list(r.reasons)}, ensure_ascii=False))
            return
        assert data is not None and out is not None
        frame, _ = read_table(data)
        scored = score_frame(card, frame)
        write_table(scored, out)
    except _model_errors() as exc:
        _fail(str(exc))
        raise  # unreachable
    console.print(f"scored {scored.height:,} rows with {card.label} → {out}")


@model_app.command("monitor")
def model_monitor(
    since: Annotated[str, typer.Option(help="The first day of the decisions to look at (YYYY-MM-DD).")],
    until: Annotated[Optional[str], typer.Option(help="The last day (default: the business date).")] = None,
) -> None:
    """PSI of the scorecard's features against its training data, and of its score against the first week, week by week
    over the decisions made since a day; exit 1 when a week's population has shifted (PSI ≥ 0.25), naming what shifted."""
    from sandu.analytics.actions import model_monitor as monitor
    from sandu.domain.errors import FieldError
    from sandu.scoring.report import PSI_WATCH

    try:
        weeks = monitor(_runtime(), since=_parse_date(since, "--since"), until=None if until is None else _parse_date(until, "--until"))
    except FieldError as exc:
        _fail(str(exc))
    t = Table(title="model monitoring: PSI by ISO week (features against the training data, score against the first week)")
    for header in ("week", "applications", "score PSI", "largest feature PSI", "alert"):
        t.add_column(header)
    for w in weeks:
        top = max(w.features, key=lambda s: s.psi, default=None)
        watch = [s.name for s in w.features if PSI_WATCH <= s.psi]
        t.add_row(w.starts_on.isoformat(), f"{w.applications:,}", "—" if w.score is None else f"{w.score.psi:.4f}",
                  "too few to judge" if top is None else f"{top.name} {top.psi:.4f}" + (f" (watch: {', '.join(watch)})" if watch else ""),
                  ", ".join(w.alerts) or "—")
    console.print(t)
    if any(w.alerts for w in weeks):
        raise typer.Exit(1)


@model_app.command("report")
def model_report(
    model: Annotated[Path, typer.Option(help="The scorecard artifact (JSON).")],
    data: Annotated[Path, typer.Option(help="Records with their outcome: CSV or Parquet.")],
    baseline: Annotated[Optional[Path], typer.Option(help="Records to compare stability with (PSI), e.g. the training data.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write a self-contained HTML report here.")] = None,
) -> None:
    """Discrimination, calibration, distribution and stability of a scorecard on a file."""
    from sandu.scoring.report import build_report, render_html
    from sandu.scoring.scorecard import read_scorecard
    from sandu.scoring.tables import read_table

    if out is not None and out.suffix.lower() not in (".html", ".htm"):
        _fail(f"--out: {out} must end in .html")
    try:
        card = read_scorecard(model)
        frame, _ = read_table(data)
        base = read_table(baseline, "--baseline")[0] if baseline is not None else None
        r = build_report(card, frame, base)
    except _model_errors() as exc:
        _fail(str(exc))
        raise  # unreachable
    console.print(f"[bold]{r.model}[/] on {r.rows:,} rows")
    for note in r.notes:
        console.print(f"  {note}")
    if r.discrimination:
        d = r.discrimination
        console.print(f"AUC {d.auc:.4f} · Gini {d.gini:.4f} · KS {d.ks:.4f} ({d.bad:,} bad of {d.rows:,})")
    if r.calibration:
        t = Table(title="calibration by score band")
        for col in ("score band", "rows", "bad", "bad rate", "mean PD"):
            t.add_column(col, justify="right")
        for b in r.calibration:
            t.add_row(f"{b.low:g}–{b.high:g}", f"{b.count:,}", f"{b.bad:,}", f"{b.bad_rate:.2%}", f"{b.pd_mean:.2%}")
        console.print(t)
    t = Table(title="score distribution")
    t.add_column("score band", justify="right")
    t.add_column("rows", justify="right")
    for lo, hi, c in r.histogram:
        t.add_row(f"{lo:.0f}–{hi:.0f}", f"{c:,}")
    console.print(t)
    if r.score_stability:
        t = Table(title="stability against the baseline")
        for col in ("", "PSI", "verdict"):
            t.add_column(col, justify="right" if col == "PSI" else "left")
        for s in (r.score_stability, *r.feature_stability):
            t.add_row(s.name, f"{s.psi:.4f}", s.verdict)
        console.print(t)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render_html(r), encoding="utf-8")
        except OSError as exc:
            _fail(f"--out: cannot write {out}: {exc.strerror or exc}")
        console.print(f"wrote {out}")


sources_app = typer.Typer(no_args_is_help=True, help="Data sources: refresh a customer's profile.")
app.add_typer(sources_app, name="sources")


@sources_app.command("refresh")
def sources_refresh(
    enterprise: Annotated[str, typer.Option("--enterprise", help="The USCC of an existing customer.")],
    consent: Annotated[Optional[str], typer.Option(help="Read under this consent (default: the enterprise's latest live one).")] = None,
) -> None:
    """Re-read the sources under a live consent, keep the new snapshot, print what changed since the last."""
    from sandu.origination.actions import refresh_sources
    from sandu.security.actor import Actor

    rt = _runtime()
    v = refresh_sources(rt, Actor.system("sources-refresh"), uscc=enterprise, consent_id=consent)
    console.print(f"[bold]{v.uscc}[/] under consent {v.consent_id}: snapshot {v.profile_sha256[:16]}… "
                  f"(before: {v.previous_sha256[:16] + '…' if v.previous_sha256 else 'none'}), read in {v.read_ms:.0f} ms")
    for source, why in sorted(v.gaps.items()):
        console.print(f"  [yellow]gap[/] {source}: {why}")
    if v.previous_sha256 is None:
        console.print("  first snapshot of this enterprise: nothing to compare with")
    elif not v.changes:
        console.print("  no change since the last snapshot")
    for c in v.changes:
        console.print(f"  {c.text}")
    if v.alerts_raised:
        console.print(f"  [bold red]early warning[/]: alerts {', '.join(map(str, v.alerts_raised))} raised (sandu alerts show ID)")


@sources_app.command("purge")
def sources_purge() -> None:
    """Delete the raw source payloads whose retention date has come (run daily; `sandu eod` runs it too)."""
    from sandu.origination.actions import purge_payloads
    from sandu.security.actor import Actor

    done = purge_payloads(_runtime(), Actor.system("purge"))
    _print_purge(done)


def _print_purge(done: dict) -> None:
    from sandu.sources.consent_text import PROFILE_RETENTION_YEARS

    total = sum(done["deleted"].values())
    detail = ", ".join(f"{k} {v:,}" for k, v in done["deleted"].items())
    console.print(f"purged {total:,} raw payloads past their retention date" + (f" ({detail})" if detail else "")
                  + (f"; {done['left']:,} more are due: run again" if done["left"] else ""))
    console.print(f"purged {done['snapshots']:,} snapshots no decision rests on, older than {PROFILE_RETENTION_YEARS} years"
                  + (f"; {done['snapshots_left']:,} more are due: run again" if done["snapshots_left"] else ""))


privacy_app = typer.Typer(no_args_is_help=True, help="Personal information (PIPL): erasure requests.")
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("erase")
def privacy_erase(
    enterprise: Annotated[str, typer.Option("--enterprise", help="The USCC of the enterprise whose data is to be erased.")],
    reason: Annotated[str, typer.Option(help="The request's reference (who asked, when, how).")],
) -> None:
    """Carry out an erasure request: stop reads, delete what the law does not require the bank to keep, say what was kept and why."""
    from sandu.origination.actions import erase_enterprise
    from sandu.security.actor import Actor

    out = erase_enterprise(_runtime(), Actor.system("privacy"), uscc=enterprise, reason=reason)
    console.print(f"erasure {out.id} for {out.uscc} done at {out.done_at.isoformat()}")
    for what, n in out.removed.items():
        console.print(f"  removed {what}: {n:,}")
    for k in out.kept:
        console.print(f"  kept {k.what} ({k.rows:,}): {k.why}")


@app.command()
def stories(
    as_of: Annotated[Optional[str], typer.Option(help="Day the stories start (default: 10 days ago; the replay runs 10 business days).")] = None,
) -> None:
    """Replay the five stories end to end and print their table; exit 1 if one does not match."""
    from sandu.demo.seed import seed_universe
    from sandu.demo.stories import REPLAY_DAYS, replay_all
    from sandu.demo.users import demo_specs, ensure_users, write_passwords

    rt = _runtime()
    rt.upgrade_schema()
    seed_universe(rt.uow, 0, 0, _parse_date(DEFAULT_AS_OF, "as_of"))
    write_passwords(DEMO_USERS_FILE, ensure_users(rt, demo_specs()))
    latest = rt.today() - timedelta(days=REPLAY_DAYS)
    day = _parse_date(as_of, "--as-of") if as_of else latest
    if day > latest:
        _fail(f"--as-of: the replay runs {REPLAY_DAYS} business days from {day} and ends after the business date {rt.today()} (allowed: {latest} or earlier)")
    outcomes = replay_all(rt, day)
    table = Table(title=f"sandu stories — policy {rt.bundle.label}, business date {day}")
    for col in ("story", "enterprise", "products", "limits", "rate", "to_first_disbursement", "servicing", "shape"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        table.add_row(*o.row().values())
    console.print(table)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


@app.command()
def eod(date_: Annotated[Optional[str], typer.Option("--date", help="Close through this business date (default: today).")] = None) -> None:
    """End of day: close every business date after the last one closed through --date, in order — accrue interest,
    penalty and compound interest, settle on the 20th, age overdue, classify, expire lines. Idempotent per date;
    an interrupted run resumes from its checkpoint."""
    from sandu.security.actor import Actor
    from sandu.servicing.actions import end_of_day

    rt = _runtime()
    day = _parse_date(date_, "--date") if date_ else rt.today()
    tasks: dict[date, int] = {}
    with Progress(TextColumn("eod {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as bar:
        def progress(on: date, done: int, total: int) -> None:
            if on not in tasks:
                tasks[on] = bar.add_task(on.isoformat(), total=total)
            bar.update(tasks[on], completed=done, total=total)

        v = end_of_day(rt, Actor.system("eod"), day, progress=progress)
    from sandu.origination.actions import purge_payloads

    _print_purge(purge_payloads(rt, Actor.system("purge")))  # the scheduled purge of raw payloads rides on the daily close
    if v.applications_expired:
        console.print(f"eod {day}: {v.applications_expired} application(s) expired: their decision was not signed within its validity")
    if not v.days:
        console.print(f"eod {day}: already closed (last closed: {v.last_closed_on})")
        return
    table = Table(title=f"end of day through {day} — last closed {v.last_closed_on}")
    for col in ("date", "lines", "batches", "drawings accrued", "interest", "penalty", "compound", "overdue", "fell due", "reclassified",
                "repaid", "expired"):
        table.add_column(col, justify="right")
    for d in v.days:
        table.add_row(d.business_date.isoformat() + (" (resumed)" if d.resumed else ""), str(d.lines), str(d.batches), str(d.drawings_accrued),
                      *(str(d.charged_fen[k]) for k in ("interest", "penalty", "compound")), str(d.overdue_fen), str(d.raised_fen),
                      str(d.reclassified), str(d.repaid), str(d.expired))
    console.print(table)


@app.command()
def referrals(
    branch: Annotated[Optional[str], typer.Option("--branch", help="The sub-branch (default: every sub-branch).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (the next page's offset is printed).")] = 0,
) -> None:
    """The referral queue: applications waiting for an officer (and requests for human review of a decline), oldest
    first, with their age, amount and products."""
    from sandu.domain.enums import Role
    from sandu.origination import actions
    from sandu.security.actor import Actor

    rt = _runtime()
    try:
        page = actions.referrals(rt, Actor.system("referrals", Role.ADMIN), branch=branch, limit=limit, offset=offset)
    except SanduError as exc:
        _fail(exc.message)
        raise  # unreachable
    table = Table(title=f"referral queue — {page.branch or 'every sub-branch'}: {page.total} waiting")
    for col in ("application", "sub-branch", "enterprise", "state", "age", "referred", "products", "human review", "decision"):
        table.add_column(col, overflow="fold")
    for r in page.referrals:
        table.add_row(str(r.application_id), r.branch, f"{r.enterprise_name} {r.uscc}", str(r.state), f"{r.age_days}d {r.age_hours % 24}h",
                      f"{r.referred_fen:,} fen", ", ".join(r.products) or "-", (r.human_review_reason or "yes") if r.human_review else "-",
                      r.decision_id or "-")
    console.print(table)
    if page.next_offset is not None:
        console.print(f"more: --offset {page.next_offset}")


alerts_app = typer.Typer(no_args_is_help=True, help="Post-loan early warning (贷后预警): scan the open lines, work the alerts.")
app.add_typer(alerts_app, name="alerts")
UserOption = Annotated[str, typer.Option("--user", help="Who acts (an officer or approver of the line's sub-branch); the password is read "
                                                         "from SANDU_PASSWORD or asked.")]
NoteOption = Annotated[Optional[str], typer.Option("--note", help="Kept in the alert's life.")]


def _person(rt, route: str, username: str, alert_id: int):
    import os

    from sandu.security import actions as security

    password = os.environ.get("SANDU_PASSWORD") or typer.prompt(f"password for {username}", hide_input=True)
    return security.sign_in_for(rt, route, username=username, password=password, object_key=alert_id)


def _print_alert(v) -> None:
    console.print(f"[bold]alert {v.id}[/] {v.rule_id} ({v.severity}) on line {v.line_id} [{v.branch}]: [bold]{v.status}[/] — {v.summary}")
    console.print(f"  rule proposes {v.rule_action}; line {v.line_status}, limit {v.line_limit_fen:,} fen; raised {v.as_of} under {v.policy_version}")
    if v.proposed_action:
        console.print(f"  proposed: {v.proposed_action}" + (f" to {v.proposed_limit_fen:,} fen" if v.proposed_limit_fen is not None else "")
                      + f" by user {v.proposed_by}" + (f", decided by user {v.decided_by}" if v.decided_by else ""))
    console.print("  evidence: " + ", ".join(f"{k}={val}" for k, val in v.evidence.items()))
    for step in v.steps or []:
        console.print(f"  {step.at:%Y-%m-%d %H:%M:%S} {step.action:<11} {step.from_status or '-'} → {step.to_status} by "
                      f"{step.actor_role}{'' if step.actor_user_id is None else ' #' + str(step.actor_user_id)}: {step.note}")
    if v.allowed_actions:
        console.print(f"  next: {', '.join(v.allowed_actions)}")


@alerts_app.command("scan")
def alerts_scan(batch: Annotated[int, typer.Option(help="Lines screened per read; those that raise are scanned again in a committed unit of work.")] = 1_000) -> None:
    """Scan every open line as of the business date with the policy's early-warning rules; raise what they find."""
    from sandu.security.actor import Actor
    from sandu.servicing import alert_actions

    v = alert_actions.scan(_runtime(), Actor.system("alerts-scan"), batch=batch)
    console.print(f"scanned {v.lines:,} open lines as of {v.as_of}: {v.raised:,} alerts raised"
                  + (" (" + ", ".join(f"{k} {n}" for k, n in v.by_rule.items()) + ")" if v.by_rule else ""))
    for line_id, why in v.refused.items():
        console.print(f"  [yellow]line {line_id} not scanned[/]: {why}")


@alerts_app.command("list")
def alerts_list(
    branch: Annotated[Optional[str], typer.Option("--branch", help="The sub-branch (default: every sub-branch).")] = None,
    status: Annotated[str, typer.Option(help="open (default), or one status: raised, acknowledged, proposed, rejected, done, dismissed.")] = "open",
    after_id: Annotated[int, typer.Option("--after-id", help="The next page: the id printed at the end of the last.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 50,
) -> None:
    """The alerts of a sub-branch (or all), oldest first."""
    from sandu.security.actor import Actor
    from sandu.servicing import alert_actions

    page = alert_actions.list_alerts(_runtime(), Actor.system("alerts"), branch=branch, status=status, after_id=after_id, limit=limit)
    table = Table(title=f"early-warning alerts — {branch or 'every sub-branch'}, {status}")
    for col in ("alert", "line", "sub-branch", "rule", "severity", "status", "raised", "summary"):
        table.add_column(col, overflow="fold")
    for a in page.alerts:
        table.add_row(str(a.id), str(a.line_id), a.branch, a.rule_id, a.severity, a.status, str(a.as_of), a.summary)
    console.print(table)
    if page.next_after_id is not None:
        console.print(f"more: --after-id {page.next_after_id}")


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[int, typer.Argument(help="The alert number.")]) -> None:
    """An alert with its evidence and its life, step by step."""
    from sandu.servicing import alert_actions

    _print_alert(alert_actions.get_alert(_runtime(), alert_id))


@alerts_app.command("acknowledge")
def alerts_acknowledge(alert_id: Annotated[int, typer.Argument()], user: UserOption, note: NoteOption = None) -> None:
    """Say the alert was seen."""
    from sandu.servicing import alert_actions

    rt = _runtime()
    _print_alert(alert_actions.acknowledge(rt, _person(rt, "alerts.acknowledge", user, alert_id), alert_id=alert_id, note=note))


@alerts_app.command("propose")
def alerts_propose(
    alert_id: Annotated[int, typer.Argument()],
    user: UserOption,
    action: Annotated[Optional[str], typer.Option(help="review, freeze or reduce_limit (default: the rule's).")] = None,
    limit_fen: Annotated[Optional[int], typer.Option("--limit-fen", help="reduce_limit: the lower limit (default: the rule's share).")] = None,
    note: NoteOption = None,
) -> None:
    """An officer proposes an action for the alert's line; nothing changes until another person approves it."""
    from sandu.servicing import alert_actions

    rt = _runtime()
    _print_alert(alert_actions.propose(rt, _person(rt, "alerts.propose", user, alert_id), alert_id=alert_id, action=action, limit_fen=limit_fen,
                                       note=note))


@alerts_app.command("approve")
def alerts_approve(alert_id: Annotated[int, typer.Argument()], user: UserOption, note: NoteOption = None) -> None:
    """Approve the proposal (not the proposer; within your authority): the line is frozen or its limit reduced now."""
    from sandu.servicing import alert_actions

    rt = _runtime()
    _print_alert(alert_actions.approve(rt, _person(rt, "alerts.approve", user, alert_id), alert_id=alert_id, note=note))


@alerts_app.command("reject")
def alerts_reject(alert_id: Annotated[int, typer.Argument()], user: UserOption,
                  note: Annotated[str, typer.Option("--note", help="Why (required).")]) -> None:
    """Refuse the proposal, saying why."""
    from sandu.servicing import alert_actions

    rt = _runtime()
    _print_alert(alert_actions.reject(rt, _person(rt, "alerts.reject", user, alert_id), alert_id=alert_id, note=note))


@alerts_app.command("dismiss")
def alerts_dismiss(alert_id: Annotated[int, typer.Argument()], user: UserOption,
                   note: Annotated[str, typer.Option("--note", help="Why (required).")]) -> None:
    """Close the alert without an action, saying why."""
    from sandu.servicing import alert_actions

    rt = _runtime()
    _print_alert(alert_actions.dismiss(rt, _person(rt, "alerts.dismiss", user, alert_id), alert_id=alert_id, note=note))


decision_app = typer.Typer(no_args_is_help=True, help="Credit decisions.")
app.add_typer(decision_app, name="decision")


@decision_app.command("replay")
def decision_replay(decision_id: Annotated[str, typer.Argument(help="The decision's id.")]) -> None:
    """Recompute a stored decision from its stored profile; exit 1 and say what differs (a version, or which results) if it is not identical."""
    from sandu.origination.actions import replay_decision

    out = replay_decision(_runtime(), decision_id)
    if out["identical"]:
        console.print(f"decision {out['decision_id']}: replayed identically", markup=False)
        return
    for line in out["versions"]:
        console.print(f"decision {out['decision_id']}: not replayable as it was made — {line}", markup=False)
    if out["differences"]:
        console.print(f"decision {out['decision_id']}: the replay differs in {', '.join(out['differences'])}", markup=False)
    raise typer.Exit(1)


policy_app = typer.Typer(no_args_is_help=True, help="Credit policy bundles.")
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def policy_check(
    path: Annotated[Path, typer.Argument(help="A bundle file (.toml), or a folder whose *.toml files are all checked.")],
) -> None:
    """Check policy bundles as a decision would load them: each problem as file:line: key: reason; exit 2 if any."""
    from sandu.policy.bundle import MAX_BUNDLE_FILES, check_bundle_file

    if path.is_dir():
        files = sorted(path.glob("*.toml"))[:MAX_BUNDLE_FILES]
        if not files:
            _fail(f"{path}: no *.toml policy bundle in this folder")
    elif path.is_file():
        files = [path]
    else:
        _fail(f"{path}: no such file or folder")
    bad = 0
    for f in files:
        bundle, problems = check_bundle_file(f)
        if bundle is not None:
            console.print(f"{f}: ok — {bundle.label} sha256 {bundle.sha256[:16]}…, {len(bundle.products)} products, "
                          f"LPR table valid through {bundle.pricing.lpr_valid_through.isoformat()}", markup=False, highlight=False)
        for line, key, reason in problems:
            bad += 1
            typer.echo(f"{f}:{line or 1}: {key or '(file)'}: {reason}", err=True)  # one line per problem, for editors and CI
    if bad:
        raise typer.Exit(2)


def _figure(attr: str, value) -> str:
    from sandu.domain.money import format_cn

    if value is None:
        return "—"
    if attr.endswith("_fen"):
        return format_cn(value)
    return f"{value * 100:.4f}%" if attr in ("approval_rate", "average_rate") else f"{value:,}"


@policy_app.command("simulate")
def policy_simulate(
    policy: Annotated[Path, typer.Option(help="The changed bundle (.toml) to try against the bundle in force.")],
    since: Annotated[Optional[str], typer.Option(help="Re-decide each enterprise's latest decision made on or after this day (YYYY-MM-DD).")] = None,
    applications: Annotated[Optional[Path], typer.Option(help="Or a Parquet file of applications (the policy's input columns, "
                                                               "application_id, uscc, as_of).")] = None,
    max_changes: Annotated[int, typer.Option(help="Outcome changes listed (largest limit change first).")] = 20,
    out: Annotated[Optional[Path], typer.Option(help="Also write the result: .xlsx (sheets 汇总, 结果变化, 逐笔), .csv (every application) or .json.")] = None,
) -> None:
    """What-if: past applications re-decided by the table form under the changed bundle and under the one in force —
    approval rate, total limit, average price, expected loss (PD × limit), and the applications whose outcome changes."""
    import polars as pl

    from sandu.analytics.exports import FIGURES, format_of, write_whatif
    from sandu.domain.errors import FieldError
    from sandu.origination.actions import simulate_policy
    from sandu.policy.bundle import check_bundle_file

    if not policy.is_file():
        _fail(f"--policy {policy}: no such file")
    changed, problems = check_bundle_file(policy)
    for line, key, reason in problems:
        typer.echo(f"{policy}:{line or 1}: {key or '(file)'}: {reason}", err=True)
    if changed is None:
        raise typer.Exit(2)
    if (since is None) == (applications is None):
        _fail("give either --since DAY or --applications FILE")
    if out is not None:
        try:
            format_of(out)
        except FieldError as exc:
            _fail(str(exc))
        if out.exists():
            _fail(f"--out {out}: the file exists; choose another name")
    table = None
    if applications is not None:
        try:
            table = pl.read_parquet(applications)
        except (OSError, pl.exceptions.PolarsError) as exc:
            _fail(f"--applications {applications}: not a readable Parquet file ({str(exc).splitlines()[0]})")
    try:
        w = simulate_policy(_runtime(), policy=changed, since=None if since is None else _parse_date(since, "--since"), table=table,
                            max_changes=max_changes)
    except FieldError as exc:
        _fail(str(exc))
    summary = Table(title=f"what-if: {w.changed.policy} against {w.current.policy}")
    for header in ("", "现行 (in force)", "拟议 (changed)"):
        summary.add_column(header, justify="right")
    for attr, header, _ in FIGURES:
        summary.add_row(header, _figure(attr, getattr(w.current, attr)), _figure(attr, getattr(w.changed, attr)))
    console.print(summary)
    console.print(f"{w.outcome_changes} applications change outcome, {w.limit_changes} change limit", markup=False)
    if w.changes:
        listed = Table(title="outcome changes (largest limit change first)")
        for header in ("decision", "uscc", "day", "outcome", "limit"):
            listed.add_column(header)
        for c in w.changes:
            listed.add_row(c.application_id, c.uscc, c.as_of.isoformat(), f"{c.outcome_before} → {c.outcome_after}",
                           f"{_figure('limit_fen', c.limit_before_fen)} → {_figure('limit_fen', c.limit_after_fen)}")
        console.print(listed)
    if out is not None:
        write_whatif(w, out)
        console.print(f"written to {out}", markup=False)


report_app = typer.Typer(no_args_is_help=True, help="Reports from the ledger.")
app.add_typer(report_app, name="report")


@report_app.command("portfolio")
def report_portfolio(
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The day (YYYY-MM-DD); default: the business date.")] = None,
    branch: Annotated[Optional[str], typer.Option(help="One sub-branch (default: the whole bank).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | xlsx | csv | json")] = "table",
    out: Annotated[Optional[Path], typer.Option(help="The file for xlsx, csv or json (required for xlsx).")] = None,
    since: Annotated[Optional[str], typer.Option("--from", help="A day before --as-of (YYYY-MM-DD): the IFRS 9 stage movement since.")] = None,
    months: Annotated[int, typer.Option("--months", help="Month-end transitions of the roll rates (0..24).")] = 12,
) -> None:
    """The portfolio as of a day, from the journal: balances by product, sub-branch, industry, tech and risk grade;
    科技型 balance, growth and share; 普惠型小微; 五级分类 and NPL ratio; overdue by DPD bucket; roll rates; IFRS 9
    provisions as of the day and, with --from, the stage movement since; measurement → first drawing. A csv --out
    writes the delinquency views beside it ({stem}-delinquency.csv)."""
    import json

    from sandu.analytics.actions import portfolio_report
    from sandu.analytics.exports import CLASS_ZH, DIMENSION_ZH, STATE_ZH, delinquency_path, write_portfolio
    from sandu.domain.errors import FieldError
    from sandu.domain.money import format_cn

    if fmt not in ("table", "xlsx", "csv", "json"):
        _fail(f"--format: {fmt!r} is not a format (allowed: table, xlsx, csv, json)")
    if fmt == "xlsx" and out is None:
        _fail("--out: an xlsx report needs a file")
    if out is not None:
        if fmt == "table" or out.suffix.lower().lstrip(".") != fmt:
            _fail(f"--out {out}: give --format {out.suffix.lower().lstrip('.') or '?'} to write it (the file's extension names its format)")
        for path in (out, delinquency_path(out)) if fmt == "csv" else (out,):
            if path.exists():
                _fail(f"--out {out}: " + ("the file exists" if path == out else f"{path} (for the delinquency views) exists") + "; choose another name")
    try:
        p = portfolio_report(_runtime(), None, as_of=None if as_of is None else _parse_date(as_of, "--as-of"), branch=branch,
                             since=None if since is None else _parse_date(since, "--from"), roll_months=months)
    except FieldError as exc:
        _fail(str(exc))
    if out is not None:
        write_portfolio(p, out)
        console.print(f"written to {out}", markup=False)
        return
    if fmt == "json":
        typer.echo(json.dumps(p.to_json(), ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        from sandu.analytics.exports import portfolio_rows

        rows = portfolio_rows(p)
        typer.echo(",".join(rows[0]) if rows else "as_of,branch,dimension,key,lines,limit_fen,principal_fen,receivable_fen")
        for r in rows:
            typer.echo(",".join(str(v) for v in r.values()))
        return
    pct = (lambda r: "—" if r is None else f"{r * 100:.2f}%")  # noqa: E731
    head = Table(title=f"portfolio {p.branch or '全行'} as of {p.as_of.isoformat()}")
    head.add_column("指标")
    head.add_column("数值", justify="right")
    for label, value in (("额度笔数", f"{p.lines:,}"), ("授信额度", format_cn(p.limit_fen)), ("贷款余额", format_cn(p.principal_fen)),
                         ("科技型贷款余额", format_cn(p.tech_principal_fen)), ("科技型同比增长", pct(p.tech_growth)), ("科技型占比", pct(p.tech_share)),
                         ("普惠型小微余额", f"{format_cn(p.inclusive_principal_fen)}（{p.inclusive_borrowers} 户）"),
                         ("不良贷款率", pct(p.npl_ratio)), ("逾期本息", format_cn(p.overdue_fen))):
        head.add_row(label, value)
    console.print(head)
    for dim, rows in p.by.items():
        t = Table(title=DIMENSION_ZH[dim])
        for h in ("分组", "笔数", "授信额度", "贷款余额"):
            t.add_column(h, justify="right" if h != "分组" else "left")
        for r in rows:
            t.add_row(r.key, f"{r.lines:,}", format_cn(r.limit_fen), format_cn(r.principal_fen))
        console.print(t)
    console.print("五级分类: " + "; ".join(f"{CLASS_ZH[c]} {format_cn(v)}" for c, v in p.class_principal_fen.items()), markup=False)
    t = Table(title="逾期天数分布")
    for h in ("逾期天数", "借据笔数", "贷款余额", "逾期本息"):
        t.add_column(h, justify="right" if h != "逾期天数" else "left")
    for b, f in p.dpd_buckets.items():
        t.add_row(STATE_ZH[b], f"{f['drawings']:,}", format_cn(f["principal_fen"]), format_cn(f["overdue_fen"]))
    console.print(t)
    if p.roll_rates:
        last = p.roll_rates[-1]
        t = Table(title=f"迁徙（笔数）{last['from']} → {last['to']}")
        t.add_column("月末状态")
        for b in next(iter(last["count"].values())):
            t.add_column(STATE_ZH[b], justify="right")
        for a, to in last["count"].items():
            t.add_row(STATE_ZH[a], *(f"{n:,}" for n in to.values()))
        console.print(t)
    if p.expected_loss is not None:
        console.print(f"预期信用损失 ECL {format_cn(p.expected_loss['ecl_fen'])}，风险敞口 EAD {format_cn(p.expected_loss['ead_fen'])}", markup=False)
    if p.stage_movement is not None:
        mv = p.stage_movement
        t = Table(title=f"阶段迁移（敞口笔数）{mv['from']} → {mv['to']}")
        for h in ("期初阶段", "→阶段1", "→阶段2", "→阶段3", "终止确认"):
            t.add_column(h, justify="right")
        for a, to in mv["matrix"].items():
            t.add_row(f"阶段{a}", *(f"{c['exposures']:,}" for c in to.values()), f"{mv['derecognised'][a]['exposures']:,}")
        t.add_row("新增", *(f"{mv['new'][b]['exposures']:,}" for b in mv["new"]), "")
        console.print(t)


ledger_app = typer.Typer(no_args_is_help=True, help="The ledger.")
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("check")
def ledger_check() -> None:
    """Prove the balances kept on rows equal the journal (every entry balances, each drawing's buckets equal their
    accounts, dues add up, each line's drawn principal is its drawings'). Exits 1 on any difference."""
    from sandu.servicing.actions import ledger_check as check

    r = check(_runtime())
    console.print(f"ledger check: {r.entries} entries, {r.postings} postings, {r.drawings} drawings, {r.lines} lines")
    for problem in r.problems:
        err.print(f"[red]✗[/] {problem}")
    if not r.ok:
        raise typer.Exit(1)
    console.print("[green]✓[/] every balance kept on a row equals the journal")


MAX_SERVE_WORKERS = 8


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on (default: SANDU_HOST or 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default: SANDU_PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (1..8). More than one: use PostgreSQL — on SQLite the processes' "
                                              "writers wait on the file lock instead of in one queue.")] = 1,
) -> None:
    """Serve the API (/api/v1, /docs) and the web pages (/app)."""
    import uvicorn

    from sandu.api.app import served_app
    from sandu.api.serving import per_process_listener, serve_processes, uvicorn_options
    from sandu.observability import MULTIPROCESS_DIR_ENV, configure_logging, metrics_across_processes
    from sandu.settings import get_settings

    settings = get_settings()
    settings.secret()  # refuse to start without a key, naming the setting
    if settings.clock == "simulated":
        _runtime().now()  # refuse to start a store that is not a demo or test store on the simulated clock
    configure_logging()  # JSON lines on stderr
    host = host or settings.host
    port = port or settings.port
    if not 1 <= port <= 65535:
        _fail(f"--port: must be within 1..65535, got {port}")
    if not 1 <= workers <= MAX_SERVE_WORKERS:
        _fail(f"--workers: must be within 1..{MAX_SERVE_WORKERS}, got {workers}")
    serving = (f"sandu is serving on [bold]http://{host}:{port}/app[/]  (API docs: http://{host}:{port}/docs)"
               + (f", {workers} processes" if workers > 1 else ""))
    with ExitStack() as stack:
        if workers > 1 or MULTIPROCESS_DIR_ENV in os.environ:  # before any process starts: each keeps its metrics where /metrics sums them
            try:
                stack.enter_context(metrics_across_processes())
            except SanduError as exc:
                _fail(exc.message)
        if workers > 1:  # each process builds its own app from the settings, so they need it by name
            try:
                listener = per_process_listener(host, port)
            except OSError as exc:
                _fail(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc}); allowed: a free port")
            console.print(serving)
            serve_processes("sandu.api.app:served_app", listener, workers=workers, host=host, port=port, options=uvicorn_options(settings))
        else:
            console.print(serving)
            uvicorn.run(served_app(), host=host, port=port, **uvicorn_options(settings))


@app.command()
def demo(
    enterprises: Annotated[int, typer.Option("--enterprises", "-n")] = 2000,
    seed: Annotated[int, typer.Option()] = 42,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default: SANDU_PORT or 8000).")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after seeding.")] = True,
    history_months: Annotated[int, typer.Option("--history-months", help="Then run the store forward this many months "
                                                "(`sandu simulate --history`); 0: none. Once: a store already run forward is kept.")] = 0,
) -> None:
    """Set up the demo: a secret key, the schema, the universe and one user per role (and, with --history-months N, N months
    of simulated history), then serve it."""
    from sandu.demo.users import demo_specs, ensure_users, write_passwords
    from sandu.settings import get_settings
    from sandu.simulate.history import MAX_MONTHS

    if not 0 <= history_months <= MAX_MONTHS:
        _fail(f"--history-months: must be within 0..{MAX_MONTHS}, got {history_months}")
    settings = get_settings()
    if settings.secret_key is None and not settings.secret_key_file.exists():
        _write_secret(settings.secret_key_file)
    db_upgrade()
    _mark_demo()
    simulate(enterprises=enterprises, seed=seed, as_of=DEFAULT_AS_OF, out=None)
    rt = _runtime()
    created = ensure_users(rt, demo_specs())
    write_passwords(DEMO_USERS_FILE, created)
    console.print(f"demo users: {', '.join(spec.username for spec in demo_specs())}")
    console.print(f"their passwords are in {DEMO_USERS_FILE} (readable only by you); log in at /app/login or POST /api/v1/auth/token")
    if history_months:
        from sandu.servicing.calendar import calendar_row

        with rt.uow.read() as s:
            closed = calendar_row(s).last_closed_on
        if closed is None:
            _run_history(history_months, seed)
        else:
            console.print(f"history: kept (the store was already run forward through {closed}; `sandu simulate --history` runs it further)")
    if serve_after:
        serve(host=None, port=port)


def _mark_demo() -> None:
    """A demo store: it may run on the simulated clock (SANDU_CLOCK=simulated)."""
    from sandu.domain.enums import StoreKind
    from sandu.servicing.calendar import mark_store

    with _runtime().uow.write() as s:
        mark_store(s, StoreKind.DEMO)


def _write_secret(path: Path) -> None:
    import os
    import secrets

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    console.print(f"wrote a new secret key to {path} (readable only by you; never commit it)")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="3..64 characters: a-z 0-9 _ . -")],
    role: Annotated[str, typer.Option(help="applicant, officer, approver, risk, operations, admin, auditor")],
    branch: Annotated[Optional[str], typer.Option(help="sub-branch (officers and approvers)")] = None,
    authority_fen: Annotated[Optional[int], typer.Option("--authority-fen", help="approval authority in fen (officers and approvers)")] = None,
    enterprise: Annotated[Optional[str], typer.Option(help="applicants: the USCC of an enterprise they act for")] = None,
    resident_id: Annotated[Optional[str], typer.Option("--resident-id", help="applicants: their resident ID")] = None,
) -> None:
    """Create a user; the password is read from standard input (never from the command line)."""
    from sandu.security import actions

    password = sys.stdin.readline().rstrip("\r\n")
    rt = _runtime()
    user = actions.create_user(rt, None, username=username, password=password, role=role, branch=branch, authority_fen=authority_fen,
                               resident_id=resident_id)
    if enterprise is not None:
        member = actions.bind_applicant(rt, None, username=username, uscc=enterprise)
        console.print(f"{username} acts for {enterprise} as {member.relation}")
    console.print(f"created user {user.id} {user.username} ({user.role})")


@users_app.command("list")
def users_list() -> None:
    """Every user, with role, sub-branch, authority and state (personal data masked)."""
    from sandu.security import actions

    rt = _runtime()
    table = Table(title="sandu users")
    for col in ("id", "username", "role", "branch", "authority_fen", "person", "disabled"):
        table.add_column(col)
    after: int | None = 0
    while after is not None:
        page = actions.list_users(rt, after_id=after, limit=actions.MAX_USER_PAGE)
        for u in page.users:
            table.add_row(str(u.id), u.username, str(u.role), u.branch or "", "" if u.authority_fen is None else str(u.authority_fen),
                          u.person_id_masked or "", "yes" if u.disabled else "")
        after = page.next_after_id
    console.print(table)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Option(help="the user to disable")]) -> None:
    """Disable a user and end all of their sessions."""
    from sandu.security import actions

    user = actions.disable_user(_runtime(), None, username=username)
    console.print(f"disabled {user.username}; their sessions are ended")


@authz_app.command("table")
def authz_table() -> None:
    """Print the authorization table: route × role × what the role may reach."""
    from sandu.security.authz import table_rows

    table = Table(title="sandu authorization (sandu/security/authz.py)")
    for col in ("route", "role", "reach"):
        table.add_column(col)
    for row in table_rows():
        table.add_row(*row)
    console.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit hash chain; exit 1 naming the first broken link."""
    from sandu.audit import actions

    verdict = actions.verify(_runtime())
    if not verdict.ok:
        _fail(verdict.text(), code=1)
    console.print(verdict.text())


@audit_app.command("head")
def audit_head() -> None:
    """Print the chain's head (sequence number and hash), to anchor it outside the database."""
    from sandu.audit import actions

    seq, digest = actions.head(_runtime())
    console.print(f"{seq} {digest}")


consent_app = typer.Typer(no_args_is_help=True, help="Consents: what was agreed to, and what was read under it.")
app.add_typer(consent_app, name="consent")


def _consent_table(title: str, consents) -> Table:
    table = Table(title=title)
    for col in ("consent", "status", "granted", "expires", "revoked", "scopes", "征信授权书", "text sha256", "verified"):
        table.add_column(col)
    for c in consents:
        table.add_row(c.id, c.status, f"{c.granted_at:%Y-%m-%d %H:%M}", f"{c.expires_at:%Y-%m-%d}",
                      "-" if c.revoked_at is None else f"{c.revoked_at:%Y-%m-%d %H:%M}", ", ".join(c.scopes),
                      "-" if c.bureau_authorized_at is None else f"{c.bureau_authorized_at:%Y-%m-%d %H:%M}",
                      c.text_sha256 or "-", "yes" if c.text_verified and c.problem is None else "NO")
    return table


@consent_app.command("show")
def consent_show(consent_id: Annotated[str, typer.Argument(help="The consent id.")]) -> None:
    """A consent: its text hash and whether the stored text still verifies, its scopes explained, its status,
    and every read made under it (source, adapter, time, duration, outcome, payload hash). Exits 1 when the text
    does not verify."""
    from sandu.origination import actions

    rt = _runtime()
    try:
        c = actions.get_consent(rt, consent_id)
        reads = actions.consent_reads(rt, consent_id)
    except SanduError as exc:
        _fail(exc.message)
        raise  # unreachable
    console.print(f"consent {c.id} of {c.uscc} — [bold]{c.status}[/]")
    console.print(f"purpose {c.purpose} · signed by {c.signer_id_masked} · granted {c.granted_at:%Y-%m-%d %H:%M:%S%z} · "
                  f"expires {c.expires_at:%Y-%m-%d %H:%M:%S%z}" + ("" if c.revoked_at is None else f" · revoked {c.revoked_at:%Y-%m-%d %H:%M:%S%z}"))
    console.print(f"text {c.text_version or '-'} ({c.language}) sha256 {c.text_sha256 or '-'}: "
                  + ("[green]verified[/]" if c.text_verified else "[red]NOT verified[/]"))
    if c.bureau_authorized_at is not None:
        console.print(f"征信授权书 signed {c.bureau_authorized_at:%Y-%m-%d %H:%M:%S%z} sha256 {c.bureau_text_sha256}: "
                      + ("[green]verified[/]" if c.bureau_text_verified else "[red]NOT verified[/]"))
    scopes = Table(title="scopes")
    for col in ("source", "", "读取什么" if c.language == "zh" else "what is read", "用于什么" if c.language == "zh" else "what for",
                "保存多久" if c.language == "zh" else "kept for"):
        scopes.add_column(col)
    for x in c.scopes_explained:
        scopes.add_row(x.source, x.title, x.what, x.purpose, x.retention)
    console.print(scopes)
    table = Table(title=f"reads under consent {c.id} ({len(reads.reads)})")
    for col in ("#", "source", "adapter", "read at", "duration ms", "outcome", "reason", "payload sha256"):
        table.add_column(col)
    for r in reads.reads:
        table.add_row(str(r.id), r.source, r.adapter, f"{r.read_at:%Y-%m-%d %H:%M:%S}", "-" if r.duration_ms is None else f"{r.duration_ms:.3f}",
                      r.outcome, r.reason or "", r.payload_sha256 or "-")
    console.print(table)
    if c.problem is not None:
        _fail(c.problem, code=1)


@consent_app.command("history")
def consent_history(enterprise: Annotated[str, typer.Option("--enterprise", help="The enterprise's USCC.")]) -> None:
    """Every consent of an enterprise: live, revoked or expired, with its scopes and whether its text verifies."""
    from sandu.origination import actions

    try:
        h = actions.consent_history(_runtime(), enterprise)
    except SanduError as exc:
        _fail(exc.message)
        raise  # unreachable
    console.print(_consent_table(f"consents of {h.uscc} ({len(h.consents)})", h.consents))


STATEMENT_FLAGS = {"line_id": "--line", "drawing_id": "--drawing", "from": "--from", "to": "--to"}


@app.command()
def statement(
    line: Annotated[int, typer.Option("--line", help="The credit line.")],
    from_: Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Last day of the period (YYYY-MM-DD).")],
    drawing: Annotated[Optional[int], typer.Option("--drawing", help="One drawing (借据) of the line (default: all).")] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv (UTF-8 with BOM, for Excel), xlsx (needs --out) or json.")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write to this file instead of the terminal.")] = None,
) -> None:
    """The statement (对账单) of a line or one of its drawings for a period: opening balances, every movement, interest
    charged by kind, closing balances and what falls due next; amounts in 元."""
    from sandu.domain.errors import FieldError
    from sandu.servicing import statement_files
    from sandu.servicing.actions import statement as build

    if format_ not in statement_files.FORMATS:
        _fail(f"--format: must be one of {', '.join(statement_files.FORMATS)}, got {format_!r}")
    if format_ == "xlsx" and out is None:
        _fail("--out: a spreadsheet is not written to the terminal; give --out FILE.xlsx")
    start, end = _parse_date(from_, "--from"), _parse_date(to, "--to")
    rt = _runtime()
    try:
        st = build(rt, line, start=start, end=end, drawing_id=drawing)
    except SanduError as exc:
        flag = STATEMENT_FLAGS.get(exc.field or "", exc.field)
        reason = exc.message if not isinstance(exc, FieldError) else exc.reason + (f" (allowed: {exc.allowed})" if exc.allowed else "")
        _fail(f"{flag}: {reason}" if flag else reason)
        raise  # unreachable
    product = rt.bundle.products.get(st.product)
    rendered = statement_files.render(st, format_, product.name if product else None)
    if out is None:
        if isinstance(rendered, (str, bytes)):
            typer.echo(rendered, nl=False)
        else:
            console.print(rendered)
        return
    if isinstance(rendered, str):
        data = rendered.encode("utf-8")
    elif isinstance(rendered, bytes):
        data = rendered
    else:
        import io

        buffer = io.StringIO()
        Console(file=buffer, width=200, color_system=None).print(rendered)
        data = buffer.getvalue().encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(f"wrote the statement of line {st.line_id} for {st.period_from}..{st.period_to} ({format_}, {len(data):,} bytes) to {out}")


batch_app = typer.Typer(no_args_is_help=True, help="Batch jobs over whole files of enterprises.")
app.add_typer(batch_app, name="batch")


@batch_app.command("precredit")
def batch_precredit(
    input_path: Annotated[Path, typer.Option("--input", help="Enterprises: a Parquet file of the pre-credit schema (as `sandu simulate --out` writes).")],
    output: Annotated[Path, typer.Option(help="Where to write the decisions (Parquet); the versions go into its metadata.")],
    engine: Annotated[str, typer.Option(help="local (pyarrow + polars, in this process) or spark (PySpark, the same kernel through Arrow).")] = "local",
    as_of: Annotated[Optional[str], typer.Option(help="Decision day (YYYY-MM-DD); default: today's business date.")] = None,
    rejects: Annotated[Optional[Path], typer.Option(help="Where rejected rows go (default: OUTPUT with .rejects.parquet).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output or rejects file.")] = False,
    batch_rows: Annotated[int, typer.Option(help="Rows decided at a time (memory is bounded by this, not by the file).")] = 100_000,
    spark_master: Annotated[str, typer.Option(help="Spark master for --engine spark.")] = "local[*]",
) -> None:
    """Pre-approved limits (预授信 / 白名单) for every enterprise of a file: tech evaluation, scorecard and policy per row.
    Exits 2 when the input or an option is refused (nothing written), 1 when no enterprise was decided (an empty
    file, or every row rejected: the rejects file says why)."""
    from sandu.batch.kernel import Models
    from sandu.batch.run import run_precredit
    from sandu.domain.dates import require_not_future
    from sandu.scoring.scorecard import Scorecard

    rt = _runtime()
    day = rt.today() if as_of is None else _parse_date(as_of, "--as-of")
    try:
        require_not_future(day, rt.now(), "--as-of")  # as a measurement: the data of a day not yet come is not known
    except SanduError as exc:
        _fail(exc.message)
    if not isinstance(rt.model, Scorecard):
        _fail(f"model {rt.model.label}: batch pre-credit scores with a trained scorecard (`sandu model train`), not an expert model")
    models = Models(rt.bundle, rt.model, rt.tech, day)
    try:
        with Progress(TextColumn("pre-credit"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("rows", total=None)
            summary = run_precredit(models, input_path, output, engine=engine, rejects=rejects, overwrite=overwrite, batch_rows=batch_rows,
                                    progress=lambda k, total: bar.update(task, advance=k, total=total), spark_master=spark_master)
    except SanduError as exc:
        _fail(exc.message)
    console.print(f"decided {summary.decided_rows:,} of {summary.input_rows:,} enterprises on {day} ({engine}) → {summary.output}; "
                  f"{summary.rejected_rows:,} rejected → {summary.rejects}")
    console.print(f"policy {summary.metadata['policy']} ({summary.metadata['policy_sha256'][:12]}), model {summary.metadata['model']} "
                  f"({summary.metadata['model_sha256'][:12]}), tech {summary.metadata['tech_config']}")
    if summary.decided_rows == 0:  # a job that publishes an empty list of pre-approved enterprises must not look like a success
        _fail(f"no enterprise was decided: {summary.input_rows:,} rows in {input_path}"
              + (f", every one rejected (why: {summary.rejects})" if summary.input_rows else ""), code=1)


def main() -> None:  # pragma: no cover - console entry point
    from pydantic import ValidationError

    from sandu.servicing.calendar import SimulatedClockRefused
    from sandu.settings import SecretMissing

    try:
        app()
    except SimulatedClockRefused as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except SanduError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        sys.exit(2)
    except SecretMissing as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except ValidationError as exc:  # a bad SANDU_* setting
        first = exc.errors()[0]
        err.print(f"[bold red]error:[/] setting SANDU_{'_'.join(str(p) for p in first['loc']).upper()}: {first['msg']}")
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
