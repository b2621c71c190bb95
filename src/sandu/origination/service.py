"""Origination on a session: register → consent → measure (decision) → approve / accept.

Each function works inside the caller's transaction (`UnitOfWork.write()` /
`.read()`; `sandu.origination.actions` opens them for the interfaces): it
validates everything first, raises a `SanduError` before writing anything when
the request cannot be honoured, and leaves the store unchanged in that case
(the transaction rolls back).

A measurement has three steps so that its write transaction stays short:
`prepare_measurement` (read: enterprise, live consent, the sources) →
`compute_measurement` (pure: profile, scores, policy) → `record_measurement`
(write: read log, profile, decision, offers). `measure` runs all three on one
session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sandu.audit.service import stored_state_json
from sandu.domain.dates import add_months, require_not_future
from sandu.domain.enums import LineStatus, MemberRelation, OfferStatus, Role
from sandu.domain.errors import Conflict, ConsentDenied, InvalidInput, NotFound, NotPermitted, shorten, show
from sandu.domain.ids import validate_uscc
from sandu.domain.keys import is_uuid
from sandu.domain.memo import KeysReadMemo
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.project import Project
from sandu.domain.text import plain_text
from sandu.intake.outcome import ReadOutcome, payloads_for_profile
from sandu.intake.simulated import SimulatedAdapter
from sandu.ledger.journal import LOAN_BUCKETS
from sandu.origination import workflow
from sandu.origination.counterfactual import Counterfactual, counterfactuals
from sandu.policy.bundle import PolicyBundle
from sandu.policy.engine import Application, PolicyResult, Scores, Sized, evaluate, size_only
from sandu.scoring.risk import AnyRiskModel as RiskModel
from sandu.scoring.risk import RiskScore, challenger_model
from sandu.scoring.risk import score as risk_score
from sandu.scoring.tech import TechEvaluation, evaluate_tech
from sandu.scoring.tech_config import TechConfig
from sandu.security.actor import Actor
from sandu.security.service import add_member, is_legal_rep, pii_hmac
from sandu.simulate.geo import DISTRICTS
from sandu.sources.catalog import ALL_SOURCES, unknown_sources
from sandu.sources.consent_text import BUREAU_SOURCE, LANGUAGES, TEXT_VERSION, render_bureau_authorization, render_consent, sha256_text
from sandu.sources.profile import CheckedSources, ProfileSnapshot, canonical_sha256, profile_from_json
from sandu.sources.schemas import SCHEMA_VERSION
from sandu.store import models as m
from sandu.store.db import EncodedJSON, attach_written, encode_json, get_row, insert_if_absent, insert_rows, row_values, set_columns, update_row

PURPOSES = ("credit_measurement",)
MAX_CONSENT_DAYS = 365
DECISION_VALID_DAYS = 30
ONLINE_BRANCH = "线上"  # the online channel serves applicants outside the sub-branches' districts
DISTRICT_BY_REGION = {code: district for district, (code, _share) in DISTRICTS.items()}


# The statements of the measurement path, built once (their values are parameters): see sandu.store.db.
_LOCK_ENTERPRISE = select(m.Enterprise).where(m.Enterprise.id == bindparam("enterprise_id")).with_for_update().execution_options(populate_existing=True)
_ENTERPRISE_BY_USCC = select(m.Enterprise).where(m.Enterprise.uscc == bindparam("uscc"))
# The enterprise and a consent of its own, both rows locked by one statement (a revocation, which locks only the consent's
# row, waits for the record or is seen by it).
_LOCK_ENTERPRISE_AND_CONSENT = (select(m.Enterprise, m.Consent).join(m.Consent, m.Consent.enterprise_id == m.Enterprise.id)
                                .where(m.Enterprise.id == bindparam("enterprise_id"), m.Consent.id == bindparam("consent_id"))
                                .with_for_update().execution_options(populate_existing=True))


def lock_enterprise(session: Session, enterprise_id: int) -> m.Enterprise:
    """The enterprise, locked for a change of what it may borrow (FOR UPDATE on PostgreSQL;
    SQLite's writer already holds the store). Taken before any of its lines, always."""
    ent = session.scalar(_LOCK_ENTERPRISE, {"enterprise_id": enterprise_id})
    assert ent is not None, f"enterprise {enterprise_id} exists"
    return ent


def committed_limit_fen(session: Session, enterprise_id: int) -> int:
    """The sum of the limits of the enterprise's lines that are not closed."""
    q = select(func.coalesce(func.sum(m.CreditLine.limit_fen), 0)).where(
        m.CreditLine.enterprise_id == enterprise_id, m.CreditLine.status != LineStatus.CLOSED)
    return int(session.scalar(q) or 0)


def find_enterprise(session: Session, uscc: str) -> m.Enterprise | None:
    validate_uscc(uscc)
    return session.scalar(_ENTERPRISE_BY_USCC, {"uscc": uscc})


def get_enterprise(session: Session, uscc: str) -> m.Enterprise:
    ent = find_enterprise(session, uscc)
    if ent is None:
        raise NotFound("enterprise", uscc, field="uscc")
    return ent


def branch_for(registry: m.SimEnterprise | None, uscc: str) -> str:
    """The sub-branch (支行) that serves an enterprise: its district's, from the business
    registry or the USCC's region code; the online channel for anyone else."""
    if registry is not None:
        return registry.district
    return DISTRICT_BY_REGION.get(uscc[2:8], ONLINE_BRANCH)


def register_enterprise(session: Session, *, uscc: str, name: str, registrant: Actor, pii_key: bytes, now: datetime) -> m.Enterprise:
    """An applicant registers the enterprise it is the legal representative of (no bank
    account needed) and becomes its legal-representative member. The public business
    registry (here: the simulated universe) must name the same person, when it knows
    the enterprise, and fills in district and industry."""
    validate_uscc(uscc)
    plain_text(name, "name")
    if registrant.role is not Role.APPLICANT or registrant.person_id_hmac is None or registrant.user_id is None:
        raise NotPermitted(None, "only an applicant registers an enterprise, as its legal representative", "an applicant", rule="origination.register.applicant")
    if session.scalar(select(m.Enterprise.id).where(m.Enterprise.uscc == uscc)) is not None:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered")
    registry = session.get(m.SimEnterprise, uscc)
    if registry is not None and pii_hmac(pii_key, registry.legal_rep_id) != registrant.person_id_hmac:
        raise NotPermitted("uscc", "the business registry names another legal representative for this enterprise",
                           "an enterprise whose legal representative you are", rule="origination.register.legal_rep")
    ent = m.Enterprise(
        uscc=uscc,
        name=name,
        district=registry.district if registry else None,
        industry=registry.industry if registry else None,
        has_bank_account=bool(registry.has_bank_account) if registry else False,
        branch=branch_for(registry, uscc),
        legal_rep_id_masked=registrant.person_id_masked or "",
        legal_rep_id_hmac=registrant.person_id_hmac,
        registered_at=now,
        registered_by=registrant.user_id,
    )
    try:
        with session.begin_nested():  # a concurrent registration of the same USCC loses here
            session.add(ent)
    except IntegrityError as exc:
        raise Conflict("uscc", f"enterprise {uscc} is already registered", "a USCC not yet registered") from exc
    add_member(session, user_id=registrant.user_id, enterprise_id=ent.id, relation=MemberRelation.LEGAL_REP, granted_by=registrant.user_id, now=now)
    workflow.on_register(session, ent, registrant, now)
    return ent


def require_legal_rep(session: Session, actor: Actor, ent: m.Enterprise, act: str) -> None:
    if not is_legal_rep(session, actor, ent):
        raise NotPermitted(None, f"only the enterprise's legal representative, in person, may {act}", "the legal representative's own session",
                           rule=f"origination.{act}.legal_rep")


def grant_consent(
    session: Session,
    *,
    uscc: str,
    scopes: list[str],
    purpose: str,
    valid_days: int,
    signer: Actor,
    now: datetime,
    bureau_authorization: bool = False,
    language: str = "zh",
) -> m.Consent:
    """One authorization for many sources, signed by the legal representative in person.

    The text the signer was shown is rendered from the current template (`sandu.sources.consent_text`)
    for these scopes, purpose, validity and enterprise, kept once in `consent_texts` and its sha256
    stored with the consent. The credit bureau (征信) needs its own authorization (征信授权书) in the
    same request: scopes that include `credit_bureau` without `bureau_authorization` are refused
    (field `bureau_authorization`), and so is a bureau authorization without that scope — never a
    consent that lists the bureau and cannot read it. Every field is checked before anything is written."""
    ent = get_enterprise(session, uscc)
    if not isinstance(scopes, list) or not scopes or not all(isinstance(x, str) for x in scopes):
        raise InvalidInput("scopes", "must list at least one data source", ", ".join(ALL_SOURCES))
    if bad := unknown_sources(scopes):
        raise InvalidInput("scopes", f"unknown data source {show(bad[0])}", ", ".join(ALL_SOURCES))
    if len(set(scopes)) != len(scopes):
        raise InvalidInput("scopes", "lists a data source twice", "each source at most once")
    if purpose not in PURPOSES:
        raise InvalidInput("purpose", f"{show(purpose)} is not a purpose sandu collects data for", ", ".join(PURPOSES))
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not 1 <= valid_days <= MAX_CONSENT_DAYS:
        raise InvalidInput("valid_days", f"must be a whole number of days, got {show(valid_days)}", f"1..{MAX_CONSENT_DAYS}")
    if language not in LANGUAGES:
        raise InvalidInput("language", f"{show(language)} is not a language the consent text is written in", ", ".join(LANGUAGES))
    if not isinstance(bureau_authorization, bool):
        raise InvalidInput("bureau_authorization", f"must be true or false, got {show(bureau_authorization)}", "true, false")
    if BUREAU_SOURCE in scopes and not bureau_authorization:
        raise InvalidInput("bureau_authorization", "the credit bureau (征信) is read only with its own authorization (征信授权书), "
                           "signed in the same request", f"true when scopes include {BUREAU_SOURCE}")
    if bureau_authorization and BUREAU_SOURCE not in scopes:
        raise InvalidInput("bureau_authorization", f"authorizes a credit-bureau query, but scopes do not include {BUREAU_SOURCE}",
                           f"false, or add {BUREAU_SOURCE} to scopes")
    require_legal_rep(session, signer, ent, "consent")
    text = render_consent(enterprise_name=ent.name, uscc=ent.uscc, scopes=scopes, purpose=purpose, valid_days=valid_days, language=language)
    text_sha256 = _keep_text(session, text)
    bureau_sha256 = None
    if bureau_authorization:
        bureau_sha256 = _keep_text(session, render_bureau_authorization(enterprise_name=ent.name, uscc=ent.uscc, purpose=purpose,
                                                                       valid_days=valid_days, language=language))
    consent = m.Consent(
        id=str(uuid.uuid4()),
        enterprise_id=ent.id,
        scopes=sorted(scopes),
        purpose=purpose,
        signer_id_masked=signer.person_id_masked or "",
        signer_user_id=signer.user_id,
        granted_at=now,
        expires_at=now + timedelta(days=valid_days),
        revoked_at=None,
        text_sha256=text_sha256,
        text_version=TEXT_VERSION,
        language=language,
        bureau_authorized_at=now if bureau_authorization else None,
        bureau_text_sha256=bureau_sha256,
    )
    session.add(consent)
    session.flush()
    workflow.on_consent(session, lock_enterprise(session, ent.id), consent, signer, now)
    return consent


def _keep_text(session: Session, text: str) -> str:
    """Store a consent text once (content-addressed); its sha256."""
    digest = sha256_text(text)
    insert_if_absent(session, m.ConsentText, key="sha256", row={"sha256": digest, "text": text})
    return digest


def get_consent(session: Session, consent_id: str) -> m.Consent:
    consent = get_row(session, m.Consent, (consent_id,)) if is_uuid(consent_id) else None
    if consent is None:
        raise NotFound("consent", consent_id, field="consent_id")
    return consent


def revoke_consent(session: Session, *, consent_id: str, now: datetime) -> m.Consent:
    """Revocation stops further reads at once: a measurement checks the consent is live before
    it reads, and again — under the enterprise lock, the consent row locked — before it records."""
    consent = get_consent(session, consent_id)
    if consent.revoked_at is None:
        consent.revoked_at = now
    return consent


def consent_status(consent: m.Consent, now: datetime) -> str:
    """live, revoked or expired (revoked wins: it is what the signer did)."""
    if consent.revoked_at is not None:
        return "revoked"
    return "expired" if consent.expires_at <= now else "live"


def consent_lapse(consent: m.Consent, now: datetime) -> str | None:
    """Why the consent no longer allows reads (None when it does)."""
    if consent.revoked_at is not None:
        return f"consent {consent.id} was revoked at {consent.revoked_at:%Y-%m-%d %H:%M:%S}"
    if consent.expires_at <= now:
        return f"consent {consent.id} expired on {consent.expires_at:%Y-%m-%d}"
    return None


def live_consent(session: Session, ent: m.Enterprise, consent_id: str, now: datetime) -> m.Consent:
    consent = get_row(session, m.Consent, (consent_id,)) if is_uuid(consent_id) else None
    if consent is None or consent.enterprise_id != ent.id:
        raise NotFound("consent", consent_id, field="consent_id")
    if (why := consent_lapse(consent, now)) is not None:
        raise ConsentDenied("consent_id", why, "a live consent")
    if BUREAU_SOURCE in consent.scopes and consent.bureau_authorized_at is None:  # granted before bureau authorizations were kept
        raise ConsentDenied("consent_id", f"consent {consent_id} covers the credit bureau without its own authorization (征信授权书); "
                            "the bureau is not read under it", "a consent granted with bureau_authorization")
    return consent


class ConsentLapsed(ConsentDenied):
    """The consent was revoked (or expired) after a measurement read under it and before it was
    recorded: no decision is recorded; the reads that were made are logged."""


def latest_live_consent(session: Session, ent: m.Enterprise, now: datetime) -> m.Consent:
    """The enterprise's most recently granted consent that still allows reads."""
    consents = session.scalars(
        select(m.Consent).where(m.Consent.enterprise_id == ent.id, m.Consent.revoked_at.is_(None), m.Consent.expires_at > now)
        .order_by(m.Consent.granted_at.desc(), m.Consent.id).limit(1)
    ).all()
    if not consents:
        raise ConsentDenied("consent_id", f"enterprise {ent.uscc} has no live consent to read its sources under",
                            "a live consent: the legal representative grants one")
    return live_consent(session, ent, consents[0].id, now)


def log_reads(session: Session, prepared: PreparedMeasurement, now: datetime, *, kept: str, again: str) -> m.Enterprise:
    """The first step of recording what was read under a consent (a measurement, a refresh): lock
    the enterprise, then the consent (a revocation committing now waits for this record, or is
    seen), and log every read — the reads were made, so they are logged whatever happens next.
    Raises `ConsentLapsed` (the log flushed, nothing else written) when the consent lapsed while
    the sources were read; `kept` says what was not written, `again` what to do."""
    locked = session.execute(_LOCK_ENTERPRISE_AND_CONSENT, {"enterprise_id": prepared.enterprise_id, "consent_id": prepared.consent_id}).one_or_none()
    assert locked is not None, "a prepared read has its enterprise and a consent of that enterprise"
    ent, consent = locked
    lapse = consent_lapse(consent, now)
    insert_rows(session, m.SourceRead, read_log_rows(prepared, lapse))
    if lapse is not None:
        raise ConsentLapsed("consent_id", f"{lapse} while the sources were being read; {kept}, the reads made under it are logged",
                            f"a live consent: grant a new one and {again}")
    return ent


@dataclass(frozen=True)
class ConsentTextCheck:
    """A consent's stored texts and whether each still hashes to the sha256 stored with the consent."""

    text: str | None
    text_sha256: str | None
    verified: bool
    bureau_text: str | None
    bureau_text_sha256: str | None
    bureau_verified: bool | None  # None: no bureau authorization

    @property
    def problem(self) -> str | None:
        if self.text_sha256 is None:
            return "no text was kept for this consent (granted before consent texts were stored)"
        if not self.verified:
            return "the stored consent text does not hash to the consent's text_sha256: it was altered"
        if self.bureau_verified is False:
            return "the stored credit-bureau authorization text does not hash to bureau_text_sha256: it was altered"
        return None


def _stored_text(session: Session, digest: str | None) -> tuple[str | None, bool]:
    if digest is None:
        return None, False
    row = session.get(m.ConsentText, digest)
    if row is None:
        return None, False
    return row.text, sha256_text(row.text) == digest


def consent_text(session: Session, consent_id: str) -> ConsentTextCheck:
    """The exact wording agreed to, reproduced from the store and verified against its hash."""
    consent = get_consent(session, consent_id)
    text, ok = _stored_text(session, consent.text_sha256)
    bureau_text, bureau_ok = _stored_text(session, consent.bureau_text_sha256)
    return ConsentTextCheck(text, consent.text_sha256, ok, bureau_text, consent.bureau_text_sha256,
                            None if consent.bureau_text_sha256 is None else bureau_ok)


def enterprise_of_consent(session: Session, consent: m.Consent) -> m.Enterprise:
    ent = session.get(m.Enterprise, consent.enterprise_id)
    assert ent is not None, "a consent always has its enterprise"
    return ent


def consent_history(session: Session, uscc: str) -> list[m.Consent]:
    """Every consent of an enterprise, oldest first (live, revoked and expired alike)."""
    ent = get_enterprise(session, uscc)
    return list(session.scalars(select(m.Consent).where(m.Consent.enterprise_id == ent.id).order_by(m.Consent.granted_at, m.Consent.id)))


def reads_of(session: Session, consent_id: str) -> list[m.SourceRead]:
    """Every read logged under a consent, in the order they were logged."""
    get_consent(session, consent_id)
    return list(session.scalars(select(m.SourceRead).where(m.SourceRead.consent_id == consent_id).order_by(m.SourceRead.id)))


OUTSIDE_SCOPE = "outside the consent's scopes: not read"


def read_log_rows(prepared: PreparedMeasurement, lapse: str | None) -> list[dict[str, Any]]:
    """The read log of a measurement, as rows of `source_reads` (column → value, in the order they are logged):
    each read as the adapter reported it (`prepared.reads`, when the reading step reports them), else from the
    payloads (the simulated adapter, found or no record); and every catalog source the consent did not cover,
    refused. A measurement whose consent lapsed before it was recorded logs its reads all the same, saying they
    were not used."""
    reads = getattr(prepared, "reads", None)
    rows: list[dict[str, Any]] = []
    if reads:
        for source, r in reads.items():
            outcome = str(getattr(r, "outcome", "found"))
            rows.append({"source": source, "adapter": str(getattr(r, "adapter", "simulated")), "outcome": outcome, "found": outcome == "found",
                         "reason": str(getattr(r, "reason", "") or ""), "duration_ms": getattr(r, "duration_ms", None),
                         "payload_sha256": getattr(r, "payload_sha256", None)})
    else:
        for source, payload in prepared.payloads.items():
            rows.append({"source": source, "adapter": "simulated", "outcome": "found" if payload is not None else "no_record",
                         "found": payload is not None, "reason": "", "duration_ms": None,
                         "payload_sha256": None if payload is None else canonical_sha256(payload)})
    logged = {r["source"] for r in rows}
    rows += [{"source": source, "adapter": "none", "outcome": "refused", "found": False, "reason": OUTSIDE_SCOPE, "duration_ms": None,
              "payload_sha256": None} for source in ALL_SOURCES if source not in logged]
    for row in rows:
        row["consent_id"], row["read_at"] = prepared.consent_id, prepared.read_at
        if lapse is not None and row["outcome"] != "refused":
            row["reason"] = (row["reason"] + "; " if row["reason"] else "") + f"not used: {lapse} before the decision was recorded"
    return rows


def _application(ent: m.Enterprise, requested_fen: int | None, project: Project | None, bundle: PolicyBundle,
                 guarantee_fen: int | None = None) -> Application:
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    if guarantee_fen is not None:
        require_fen(guarantee_fen, field="guarantee_fen", max_fen=MAX_AMOUNT_FEN)
    if project is not None and not isinstance(project, Project):
        raise InvalidInput("project", "must be a Project record", "name, capex_fen, annual_cash_flow_fen, tenor_years")
    if project is not None and project.tenor_years > bundle.project.max_tenor_years:
        raise InvalidInput("project.tenor_years", f"{project.tenor_years} years is beyond the project loan's longest tenor "
                           f"(rule project.max_tenor_years of policy {bundle.label})", f"1..{bundle.project.max_tenor_years} years")
    return Application(has_bank_account=ent.has_bank_account, requested_fen=requested_fen, project=project, guarantee_fen=guarantee_fen)


@dataclass(frozen=True)
class PreparedMeasurement:
    """What a measurement read under a live consent: the inputs of the pure step."""

    enterprise_id: int
    uscc: str
    consent_id: str
    application: Application
    payloads: dict[str, dict[str, Any] | None]  # each source that answered → its payload, None if no record
    read_at: datetime
    read_ms: float
    reads: dict[str, ReadOutcome] = field(default_factory=dict)  # each source the consent covers → how its read went

    @property
    def unavailable(self) -> frozenset[str]:
        """The sources asked that gave no usable answer (gaps the profile flags and the policy weighs)."""
        return frozenset(s for s, r in self.reads.items() if not r.ok)


@dataclass(frozen=True)
class ComputedMeasurement:
    profile: ProfileSnapshot
    scores: dict[str, Any]
    result: PolicyResult
    compute_ms: float
    counterfactuals: tuple[Counterfactual, ...] = ()  # for a decline or a limit below the request: what would change it


# Reads the consented sources of one enterprise: (sources, uscc, as_of) → source → outcome.
SourceReader = Callable[[tuple[str, ...], str, date], dict[str, ReadOutcome]]


def store_reader(session: Session) -> SourceReader:
    """The simulated universe read on the caller's session, one query for all sources (no
    threads, no deadlines: the store answers or the transaction fails). What a measurement
    made with a session alone reads; the runtime reads through its adapters (`read_all`)."""

    def read(sources: tuple[str, ...], uscc: str, as_of: date) -> dict[str, ReadOutcome]:
        t0 = time.perf_counter()
        rows = {r.source: r.payload for r in session.scalars(select(m.SourceRecord).where(m.SourceRecord.uscc == uscc, m.SourceRecord.source.in_(sources)))}
        ms = (time.perf_counter() - t0) * 1000
        return {s: ReadOutcome(s, SimulatedAdapter.name, "found", rows[s], duration_ms=ms) if isinstance(rows.get(s), dict)
                else ReadOutcome(s, SimulatedAdapter.name, "no_record", duration_ms=ms) if s not in rows
                else ReadOutcome(s, SimulatedAdapter.name, "invalid", reason=f"the stored payload is {type(rows[s]).__name__}, not an object", duration_ms=ms)
                for s in sources}

    return read


def prepare_measurement(
    session: Session,
    *,
    uscc: str,
    consent_id: str,
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    requested_fen: int | None = None,
    project: Project | None = None,
    reader: SourceReader | None = None,
    guarantee_fen: int | None = None,
) -> PreparedMeasurement:
    """Check the request and the consent, then read the consented sources with `reader`
    (default: the store, on this session). A source that does not answer is a gap, never a failure."""
    t0 = time.perf_counter()
    require_not_future(as_of, now, "as_of")
    bundle.lpr_on(as_of)  # the policy can price on this day (its LPR table is current), or nothing is read
    ent = get_enterprise(session, uscc)
    consent = live_consent(session, ent, consent_id, now)
    missing = [s for s in bundle.required_sources if s not in consent.scopes]
    if missing:
        raise ConsentDenied(
            "consent_id",
            f"consent {shorten(consent_id)} does not cover source {missing[0]!r}, which measurement requires",
            f"a consent whose scopes include {', '.join(bundle.required_sources)}",
        )
    application = _application(ent, requested_fen, project, bundle, guarantee_fen)
    sources = tuple(sorted(consent.scopes))
    reads = (reader or store_reader(session))(sources, ent.uscc, as_of)
    assert set(reads) == set(sources), "a reader answers for every source it was asked, and only those"
    return PreparedMeasurement(ent.id, ent.uscc, consent.id, application, payloads_for_profile(reads), now, (time.perf_counter() - t0) * 1000, reads)


def compute_measurement(prepared: PreparedMeasurement, as_of: date, bundle: PolicyBundle, model: RiskModel, tech: TechConfig) -> ComputedMeasurement:
    """Pure: the profile, the scores and the policy result."""
    t0 = time.perf_counter()
    checked = CheckedSources(as_of, prepared.payloads, prepared.unavailable)  # each source checked once, for the search too
    profile = checked.profile(prepared.uscc)
    kept = KeptScores.of(model, tech)
    scores, result = score_and_decide(profile, prepared.application, bundle, model, tech, as_of, kept)
    search = searching(bundle, model, tech, as_of, kept)
    whatif = counterfactuals(prepared.uscc, checked, prepared.application, result, lambda p: search(p)(prepared.application), search)
    return ComputedMeasurement(profile, scores, result, (time.perf_counter() - t0) * 1000, whatif)


def record_measurement(
    session: Session, prepared: PreparedMeasurement, computed: ComputedMeasurement, *, as_of: date, now: datetime, bundle: PolicyBundle,
    model: RiskModel, tech: TechConfig, initiated_by: int | None = None, actor: Actor | None = None,
) -> m.Decision:
    """Write the read log, the profile (once per content hash), the decision and its offers;
    the new decision is the enterprise's decision in force and supersedes the one before. The
    enterprise's application is assessed and moved to the decision's outcome (`workflow.on_decision`),
    by `actor` (default: the user `initiated_by`, or a system job)."""
    draft = draft_decision(prepared, computed, as_of=as_of, now=now, bundle=bundle, model=model, tech=tech, initiated_by=initiated_by)
    return record_decision(session, prepared, computed, draft, now=now, actor=actor)[0]


@dataclass(frozen=True)
class DecisionDraft:
    """What a measurement will write that depends on nothing the write transaction reads, built before it begins (so
    that the store's writer, which on SQLite every process takes in turn, is held no longer than the writing needs):
    the decision, its row complete but for its application and its timings (`record_decision` sets them), its big
    JSON columns encoded ahead, each once (`sandu.audit.service.stored_state_json`: the text stored is the one the audit
    trail's hash of the row's state reads, `audit.note`'s `after_ahead`), its offers (objects no session holds, for the
    answer) and their rows, and its profile's row."""

    decision: m.Decision
    encoded: dict[str, EncodedJSON]
    state_ahead: dict[str, str]
    offers: list[m.Offer]
    offer_rows: list[dict[str, Any]]
    profile: dict[str, Any]


def draft_decision(prepared: PreparedMeasurement, computed: ComputedMeasurement, *, as_of: date, now: datetime, bundle: PolicyBundle,
                   model: RiskModel, tech: TechConfig, initiated_by: int | None = None) -> DecisionDraft:
    """Pure: the `DecisionDraft` of a computed measurement."""
    profile, result = computed.profile, computed.result
    decision = m.Decision(
        id=str(uuid.uuid4()),
        enterprise_id=prepared.enterprise_id,
        profile_sha256=profile.sha256,
        policy_version=bundle.label,
        policy_sha256=bundle.sha256,
        model_versions={"risk": model.label, "risk_sha256": model.sha256, "risk_challenger": challenger_model().label,
                        "tech": tech.label, "tech_sha256": tech.sha256, "source_schemas": SCHEMA_VERSION},
        application=_application_json(prepared.application),
        outcome=result.outcome,
        comprehensive_limit_fen=result.comprehensive_limit_fen,
        result=(stored := {**result.to_json(), "scores": computed.scores, "quality_flags": list(profile.quality_flags),
                           "counterfactuals": [c.to_json() for c in computed.counterfactuals]}),
        **{k: v for k, v in decision_grades(stored).items() if k in ("risk_grade", "pd_12m")},
        as_of=as_of,
        decided_at=now,
        initiated_by=initiated_by,
        superseded_at=None,
    )
    big = ("result", "model_versions", "application")
    state_ahead = {column: stored_state_json(getattr(decision, column)) for column in big}  # each encoded once, stored as hashed
    offers = new_offers(decision.id, result)
    return DecisionDraft(decision, {column: EncodedJSON(text) for column, text in state_ahead.items()}, state_ahead, offers,
                         [row_values(o, without=("id",)) for o in offers], profile_values(prepared, profile, as_of=as_of, now=now))


def profile_values(prepared: PreparedMeasurement, profile: ProfileSnapshot, *, as_of: date, now: datetime) -> dict[str, Any]:
    """Pure: a profile snapshot's row (a measurement's, a refresh's), its JSON encoded ahead (built before the write
    takes the store's writer)."""
    assert len(profile.sha256) == 64, "a recorded profile is hashed (only the counterfactual search's tried ones are not)"
    return {"sha256": profile.sha256, "enterprise_id": prepared.enterprise_id, "consent_id": prepared.consent_id, "as_of": as_of,
            "snapshot": encode_json(profile.to_json()), "created_at": now}


def record_decision(session: Session, prepared: PreparedMeasurement, computed: ComputedMeasurement, draft: DecisionDraft, *, now: datetime,
                    actor: Actor | None = None) -> tuple[m.Decision, m.Enterprise]:
    """`record_measurement` of a drafted decision (`draft_decision`, each draft recorded once), answering also the
    enterprise it locked (now with the new decision in force), so that the answer is built without reading it again."""
    t0 = time.perf_counter()
    decision = draft.decision
    assert inspect(decision).transient and decision.application_id is None, f"decision {decision.id}: a draft is recorded once"
    ent = log_reads(session, prepared, now, kept="no decision was recorded", again="measure again")
    insert_if_absent(session, m.Profile, key="sha256", row=draft.profile)
    actor = actor or _actor_of_user(session, decision.initiated_by)
    app = workflow.application_to_assess(session, ent, actor, now, consent_id=prepared.consent_id)
    # Written with Core statements (one per table) from values built before, not through the ORM's unit of work: the
    # decision row is completed, inserted, and attached to the session as it was written (`attach_written`).
    decision.application_id = app.id
    decision.timings_ms = _timings_ms(prepared, computed, (time.perf_counter() - t0) * 1000)
    insert_rows(session, m.Decision, [{**row_values(decision), **draft.encoded}])
    if ent.live_decision_id is not None:  # superseded in one UPDATE (loading the old decision, its result and all, costs more)
        superseded = update_row(session, m.Decision, (ent.live_decision_id,), superseded_at=now)
        assert superseded == 1, "the decision in force exists"
    set_columns(session, ent, live_decision_id=decision.id)
    insert_rows(session, m.Offer, draft.offer_rows)
    workflow.on_decision(session, app, decision, actor, now, valid_days=DECISION_VALID_DAYS)
    attach_written(session, decision)
    return decision, ent


def _timings_ms(prepared: PreparedMeasurement, computed: ComputedMeasurement, record_ms: float) -> dict[str, float]:
    """What a measurement's steps took, written with its decision: reading the sources, scoring and the policy, and
    recording — from locking the enterprise to the decision's row (the rows written after it, its offers and its
    application's move, are not counted: the decision's row is written once, with its timings)."""
    return {"read_sources_ms": round(prepared.read_ms, 3), "score_and_policy_ms": round(computed.compute_ms, 3),
            "record_ms": round(record_ms, 3), "total_ms": round(prepared.read_ms + computed.compute_ms + record_ms, 3)}


def decision_grades(result: dict[str, Any]) -> dict[str, Any]:
    """What a decision's result says of its grades, as the columns the portfolio reports read: its tech and risk
    grades, its calibrated 12-month PD as the result writes it, and 科技型 — the tech evaluation qualified the
    borrower as a 科技型中小企业 (all MOST criteria passed) or a 创新型中小企业. A decision keeps its risk grade and
    PD; a line keeps all four of the decision it was signed from."""
    scores = result.get("scores") or {}
    tech, risk = scores.get("tech") or {}, scores.get("risk") or {}
    pd = risk.get("pd")
    return {"tech_grade": result.get("tech_grade"), "risk_grade": result.get("risk_grade"),
            "pd_12m": None if pd is None else repr(float(pd)),
            "tech_sector": bool(tech.get("most_pass")) or bool((tech.get("innovative") or {}).get("passed"))}


def new_offers(decision_id: str, result: PolicyResult) -> list[m.Offer]:
    """The offer rows of a new decision (not added to any session): offered where the policy approved a part,
    referred otherwise; nobody has reviewed or approved them yet."""
    return [m.Offer(decision_id=decision_id, product=o.product, limit_fen=o.limit_fen, approved_fen=o.approved_fen, rate_annual=o.rate_annual,
                    status=OfferStatus.OFFERED if o.approved_fen > 0 else OfferStatus.REFERRED, reviewed_by=None, reviewed_at=None,
                    review_opinion=None, approved_by=None, approved_at=None)
            for o in result.offers]


def _actor_of_user(session: Session, user_id: int | None) -> Actor:
    user = session.get(m.User, user_id) if user_id is not None else None
    if user is None:
        return Actor.system("measure")
    return Actor(user_id=user.id, username=user.username, role=Role(user.role), branch=user.branch, authority_fen=user.authority_fen)


@dataclass(frozen=True)
class KeptScores:
    """The tech evaluations and risk scores of one measurement — of the profile it decides and of those its
    counterfactual search tries —, each computed again only for features that differ where it reads them
    (`sandu.domain.memo.KeysReadMemo`): a lever on tax or invoices leaves the tech evaluation as it was, one on R&D or
    tech staff mostly the risk score. One per measurement, dropped with it."""

    tech: KeysReadMemo[TechEvaluation]
    risk: KeysReadMemo[RiskScore]

    @classmethod
    def of(cls, model: RiskModel, tech_config: TechConfig) -> KeptScores:
        return cls(KeysReadMemo(lambda f: evaluate_tech(f, tech_config)), KeysReadMemo(lambda f: risk_score(model, f)))


def _scored(profile: ProfileSnapshot, model: RiskModel, tech_config: TechConfig,
            kept: KeptScores | None = None) -> tuple[TechEvaluation, RiskScore, dict[str, Any], Scores]:
    """The tech evaluation and the risk score of a profile (as `kept` keeps them, when given), and what the policy
    reads of them and of it."""
    tech = kept.tech(profile.features) if kept is not None else evaluate_tech(profile.features, tech_config)
    risk = kept.risk(profile.features) if kept is not None else risk_score(model, profile.features)
    features = {**profile.features, "_quality_flags": profile.quality_flags}
    return tech, risk, features, Scores(tech.grade, tech.most_pass, risk.pd_rounded, risk.reasons)


def deciding(profile: ProfileSnapshot, bundle: PolicyBundle, model: RiskModel, tech_config: TechConfig, as_of: date) -> Callable[[Application], Sized]:
    """Pure: the profile scored, and the function giving the policy's outcome, comprehensive limit and approved part for
    it on an application, as `score_and_decide` reaches them, without what only the record needs (the challenger's score,
    the scores' and the rules' explanations, the offers' prices and terms). For the counterfactual search: each of its
    evaluations reads only the outcome and the comprehensive limit, and those of one profile on several applications (a
    guarantee's search) share the scoring."""
    _tech, _risk, features, scores = _scored(profile, model, tech_config)
    return lambda application: size_only(bundle, features, profile.collateral, scores, application, as_of)


def _scored_key(profile: ProfileSnapshot) -> tuple[Any, ...]:
    """What `_scored` reads of a profile, hashable: its features (each with its type: 1, 1.0 and True are told apart)
    and its quality flags."""
    return tuple(sorted((k, type(v).__name__, tuple(v) if isinstance(v, list) else v) for k, v in profile.features.items())), profile.quality_flags


def searching(bundle: PolicyBundle, model: RiskModel, tech_config: TechConfig, as_of: date,
              kept: KeptScores | None = None) -> Callable[[ProfileSnapshot], Callable[[Application], Sized]]:
    """`deciding` for one search (`counterfactuals`): a profile whose features and quality flags it scored already is
    not scored again — the scores read nothing else of it, so a change the scores do not see (a property offered as
    collateral: 7 evaluations of the same features) is decided by the policy alone; of a profile whose features
    changed, the tech evaluation and the risk score are each computed again only where `kept` (the measurement's,
    holding the evaluations of the profile it decided; a new one when not given) has none for what it reads. Keeps
    what it scored until it is dropped: one per distinct profile the search tries, at most its bounded number of
    evaluations."""
    scored: dict[tuple[Any, ...], tuple[dict[str, Any], Scores]] = {}
    kept = kept or KeptScores.of(model, tech_config)

    def for_profile(profile: ProfileSnapshot) -> Callable[[Application], Sized]:
        key = _scored_key(profile)
        if (hit := scored.get(key)) is None:
            _tech, _risk, features, scores = _scored(profile, model, tech_config, kept)
            hit = scored[key] = (features, scores)
        features, scores = hit
        return lambda application: size_only(bundle, features, profile.collateral, scores, application, as_of)

    return for_profile


def score_and_decide(
    profile: ProfileSnapshot, application: Application, bundle: PolicyBundle, model: RiskModel, tech_config: TechConfig, as_of: date,
    kept: KeptScores | None = None,
) -> tuple[dict[str, Any], PolicyResult]:
    """Pure: the scores and the policy result for a profile (also used to replay), its evaluations kept in `kept` when
    given (for the measurement's counterfactual search). The tech evaluation gives the grade; the policy prices it."""
    tech, risk, features, scores = _scored(profile, model, tech_config, kept)
    result = evaluate(bundle, features, profile.collateral, scores, application, as_of)
    challenger = challenger_model()
    challenged = {**risk_score(challenger, profile.features).to_json(), "model": challenger.label}  # recorded, never decides
    return {"tech": tech.to_json(), "risk": risk.to_json(), "risk_challenger": challenged}, result


def measure(
    session: Session,
    *,
    uscc: str,
    consent_id: str,
    as_of: date,
    now: datetime,
    bundle: PolicyBundle,
    model: RiskModel,
    tech: TechConfig,
    requested_fen: int | None = None,
    project: Project | None = None,
    initiated_by: int | None = None,
    actor: Actor | None = None,
    guarantee_fen: int | None = None,
) -> m.Decision:
    """测额 on one session: read the consented sources, build the profile, score, apply policy, record."""
    prepared = prepare_measurement(session, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, bundle=bundle,
                                   requested_fen=requested_fen, project=project, guarantee_fen=guarantee_fen)
    computed = compute_measurement(prepared, as_of, bundle, model, tech)
    return record_measurement(session, prepared, computed, as_of=as_of, now=now, bundle=bundle, model=model, tech=tech, initiated_by=initiated_by,
                              actor=actor)


def _application_json(app: Application) -> dict[str, Any]:
    p = app.project
    return {
        "has_bank_account": app.has_bank_account,
        "requested_fen": app.requested_fen,
        "project": None if p is None else p.to_json(),
        **({} if app.guarantee_fen is None else {"guarantee_fen": app.guarantee_fen}),  # kept only when one was offered
    }


REPLAYED_KEYS = ("outcome", "offers", "comprehensive_limit_fen", "tech_grade", "risk_grade", "tech_uplift_fen", "inclusive_small_micro",
                 "rule_hits", "reasons")  # what a replay must give back exactly (the stored result also holds scores and flags)


def version_differences(d: m.Decision, bundle: PolicyBundle, model: RiskModel, tech: TechConfig) -> list[str]:
    """Which of the versions a decision was made under differ from those given, in words (empty: none)."""
    v = d.model_versions
    pairs = (("policy", d.policy_version, d.policy_sha256, bundle.label, bundle.sha256),
             ("risk model", v.get("risk"), v.get("risk_sha256"), model.label, model.sha256),
             ("tech config", v.get("tech"), v.get("tech_sha256"), tech.label, tech.sha256))
    return [f"{what}: made under {label} ({(sha or '?')[:12]}…), now {now_label} ({now_sha[:12]}…)"
            for what, label, sha, now_label, now_sha in pairs if sha != now_sha]


def replay_differences(d: m.Decision, replayed: dict[str, Any]) -> list[str]:
    """The keys of a replayed result that differ from the stored one (empty: identical)."""
    return [k for k in REPLAYED_KEYS if replayed.get(k) != d.result.get(k)]


def replay(session: Session, decision_id: str, bundle: PolicyBundle, model: RiskModel, tech: TechConfig) -> PolicyResult:
    """Re-run a stored decision from its stored profile; versions (policy, risk model, tech config) must match."""
    d = get_decision(session, decision_id)
    v = d.model_versions
    if differ := version_differences(d, bundle, model, tech):
        raise Conflict("decision_id", f"the decision was made under another policy, model or tech config version than policy {bundle.label}, "
                                      f"model {model.label}, tech {tech.label}: {'; '.join(differ)}",
                       f"policy {d.policy_version}, model {v.get('risk')}, tech {v.get('tech')}")
    prof = session.get(m.Profile, d.profile_sha256)
    assert prof is not None, "a decision always references its profile"
    snapshot = profile_from_json(prof.snapshot, d.profile_sha256)  # ProfileIntegrityError if it was altered
    a = d.application
    p = a["project"]
    app = Application(a["has_bank_account"], a["requested_fen"], Project(**p) if p else None, a.get("guarantee_fen"))
    return score_and_decide(snapshot, app, bundle, model, tech, d.as_of)[1]


def get_decision(session: Session, decision_id: str) -> m.Decision:
    d = session.get(m.Decision, decision_id) if is_uuid(decision_id) else None
    if d is None:
        raise NotFound("decision", decision_id, field="decision_id")
    return d


def offers_of(session: Session, decision_id: str) -> list[m.Offer]:
    return list(session.scalars(select(m.Offer).where(m.Offer.decision_id == decision_id).order_by(m.Offer.id)))


def offer_of(session: Session, decision_id: str, product: str) -> m.Offer:
    """The offer, locked for a change (FOR UPDATE on PostgreSQL)."""
    get_decision(session, decision_id)
    stmt = select(m.Offer).where(m.Offer.decision_id == decision_id, m.Offer.product == product).with_for_update()
    offer = session.scalar(stmt.execution_options(populate_existing=True))
    if offer is None:
        raise NotFound("offer", f"{product} of decision {decision_id}", field="product")
    return offer


MAX_OPINION_LENGTH = 1000


def _open_referral(offer: m.Offer, product: str) -> None:
    if offer.status == OfferStatus.ACCEPTED:
        raise Conflict("product", f"offer {product} was already signed for; measure again for a new limit", "an offer not yet accepted")
    if offer.approved_fen == offer.limit_fen:
        raise Conflict("product", f"offer {product} has nothing left to approve", "an offer with a referred part")


def _not_the_maker(actor: Actor, decision: m.Decision, act: str) -> None:
    if actor.user_id is not None and actor.user_id == decision.initiated_by:
        raise NotPermitted(None, f"you initiated this decision and may not {act} it", "another officer (审贷分离)", rule="maker_checker.initiator")


def review_offer(session: Session, *, decision_id: str, product: str, reviewer: Actor, opinion: str, now: datetime) -> m.Offer:
    """审: an officer reviews a referred offer and records an opinion; someone else approves it."""
    plain_text(opinion, "opinion", max_length=MAX_OPINION_LENGTH)
    offer = offer_of(session, decision_id, product)
    _open_referral(offer, product)
    if offer.reviewed_by is not None:
        raise Conflict("product", f"offer {product} was already reviewed", "an offer not yet reviewed")
    _not_the_maker(reviewer, get_decision(session, decision_id), "review")
    offer.reviewed_by, offer.reviewed_at, offer.review_opinion = reviewer.user_id, now, opinion
    return offer


def check_authority(bundle: PolicyBundle, approver: Actor, product: str, amount_fen: int, what: str = "the offer") -> None:
    """分级审批: `amount_fen` of `product` within both the approver's own authority (`approval.authority`) and what the
    bundle's approval-authority matrix gives their role for the product (`approval.matrix`); the smaller binds, and
    the refusal names it (the person's own when both are equal). `what` is the amount's name in the refusal (an
    offer; an early-warning action decides over a line's limit)."""
    own = approver.authority_fen or 0
    matrix = bundle.approval_limit(str(approver.role), product)
    if matrix is None:
        raise NotPermitted(None, f"the approval-authority matrix of policy {bundle.label} gives a {approver.role} no authority over {product}",
                           f"a role the matrix names for {product}", rule="approval.matrix")
    if amount_fen <= min(own, matrix):
        return
    if own <= matrix:
        raise NotPermitted(None, f"{what} of {amount_fen} fen exceeds your approval authority of {own} fen",
                           f"an approver whose authority covers {amount_fen} fen", rule="approval.authority")
    raise NotPermitted(None, f"{what} of {amount_fen} fen exceeds the {matrix} fen that the approval-authority matrix of policy {bundle.label} "
                       f"gives a {approver.role} for {product}", f"a role the matrix allows {amount_fen} fen of {product}", rule="approval.matrix")


def approve_offer(session: Session, *, decision_id: str, product: str, approver: Actor, now: datetime, bundle: PolicyBundle) -> m.Offer:
    """贷: approve the referred part of a reviewed offer. Maker-checker: not the one who initiated
    the decision, not the one who reviewed it, and only within the approver's authority and the
    bundle's approval-authority matrix (`check_authority`). The application moves on (`workflow.on_approve`)."""
    offer = offer_of(session, decision_id, product)
    _open_referral(offer, product)
    if offer.reviewed_by is None:
        raise Conflict("product", f"offer {product} must be reviewed by an officer before it is approved", "a reviewed offer")
    decision = get_decision(session, decision_id)
    _not_the_maker(approver, decision, "approve")
    if approver.user_id is not None and approver.user_id == offer.reviewed_by:
        raise NotPermitted(None, "you reviewed this offer and may not also approve it", "another officer or an approver (审贷分离)",
                           rule="maker_checker.reviewer")
    check_authority(bundle, approver, product, offer.limit_fen)
    offer.approved_fen = offer.limit_fen
    offer.approved_by, offer.approved_at = approver.user_id, now
    offer.status = OfferStatus.OFFERED
    workflow.on_approve(session, decision, offers_of(session, decision_id), approver, now, product)
    return offer


def accept_offer(session: Session, *, decision_id: str, product: str, signer: Actor, as_of: date, now: datetime) -> m.CreditLine:
    """The legal representative signs online, in person; the approved part becomes a credit
    line on the terms the decision recorded (not whatever the policy says today)."""
    require_not_future(as_of, now, "as_of")
    decision = get_decision(session, decision_id)
    ent = lock_enterprise(session, decision.enterprise_id)
    offer = offer_of(session, decision_id, product)
    require_legal_rep(session, signer, ent, "sign")
    if offer.status == OfferStatus.ACCEPTED:
        raise Conflict("product", f"offer {product} was already accepted", "an offer not yet accepted")
    if offer.approved_fen == 0:
        raise Conflict("product", f"offer {product} is still under review by an officer", "an offer with an approved amount")
    if as_of > decision.as_of + timedelta(days=DECISION_VALID_DAYS) or as_of < decision.as_of:
        raise Conflict("decision_id", f"the decision of {decision.as_of} is valid for {DECISION_VALID_DAYS} days", "measure again")
    if ent.live_decision_id != decision.id:
        raise Conflict("decision_id", "a newer decision of the enterprise has superseded this one", "an offer of the enterprise's latest decision")
    committed = committed_limit_fen(session, ent.id)
    if committed + offer.approved_fen > decision.comprehensive_limit_fen:
        raise Conflict("product", f"the enterprise's lines already hold {committed} fen of its comprehensive limit of "
                       f"{decision.comprehensive_limit_fen} fen; this offer needs {offer.approved_fen} fen more",
                       f"at most {decision.comprehensive_limit_fen - committed} fen: reduce or close a line first")
    app = workflow.check_may_accept(session, decision)  # withdrawn or expired: 409, naming the state
    terms = next(o for o in decision.result["offers"] if o["product"] == product)
    offer.status = OfferStatus.ACCEPTED
    closed = session.scalar(select(m.BusinessCalendar.last_closed_on))
    opened_on = as_of if closed is None or as_of > closed else closed + timedelta(days=1)  # after the last date end of day closed
    line = m.CreditLine(
        enterprise_id=ent.id,
        offer_id=offer.id,
        product=product,
        limit_fen=offer.approved_fen,
        drawn_principal_fen=0,
        rate_annual=offer.rate_annual,
        basis_days=terms["basis_days"],
        repayment_method=terms["repayment_method"],
        revolving=terms["revolving"],
        settlement_frequency=terms["settlement"],
        max_drawing_months=terms["max_drawing_months"],
        # terms of decisions recorded before these were part of an offer: the defaults of DOMAIN.md
        term_within_validity=terms.get("term_within_validity", terms.get("kind") != "project"),
        interest_with_principal=terms.get("interest_with_principal", False),
        penalty_uplift=Decimal(terms.get("penalty_uplift", "0.5")),
        grace_days=terms.get("grace_days", 0),
        allocation_order=",".join(terms.get("allocation_order", LOAN_BUCKETS)),
        opened_on=opened_on,
        expires_on=add_months(opened_on, terms["validity_months"]),
        status=LineStatus.ACTIVE,
        accrued_through=opened_on - timedelta(days=1),
        risk_class="normal",
        signed_by=signer.user_id,
        # as the decision recorded them; a decision made before they were recorded leaves them NULL (nothing is recomputed)
        annualized_rate=Decimal(terms["annualized_rate"]) if "annualized_rate" in terms else None,
        inclusive_small_micro=decision.result.get("inclusive_small_micro"),
        **decision_grades(decision.result),
    )
    session.add(line)
    session.flush()
    workflow.on_accept(session, app, line, signer, now)
    return line


def request_human_review(session: Session, *, decision_id: str, requester: Actor, reason: str, now: datetime) -> m.HumanReview:
    """PIPL art. 24: the legal representative asks for a person to review an automated decline, once per decision."""
    plain_text(reason, "reason", max_length=workflow.MAX_REVIEW_REASON_LENGTH)
    decision = get_decision(session, decision_id)
    ent = lock_enterprise(session, decision.enterprise_id)
    return workflow.request_human_review(session, decision=decision, ent=ent, actor=requester, reason=reason, now=now)


def review_human_review(session: Session, *, decision_id: str, reviewer: Actor, outcome: str, opinion: str, now: datetime) -> m.HumanReview:
    """审: an officer reviews a human-review request and proposes its outcome."""
    return workflow.review_human_review(session, decision=get_decision(session, decision_id), reviewer=reviewer, outcome=outcome, opinion=opinion,
                                        now=now)


def decide_human_review(session: Session, *, decision_id: str, approver: Actor, now: datetime) -> m.HumanReview:
    """贷: another person confirms the proposed outcome of a human review."""
    decision = get_decision(session, decision_id)
    lock_enterprise(session, decision.enterprise_id)
    return workflow.decide_human_review(session, decision=decision, approver=approver, now=now)


def check_scopes_cover(scopes: list[str], bundle: PolicyBundle) -> None:
    """Refuse, before anything is written, scopes that cannot support a measurement."""
    if isinstance(scopes, list) and all(isinstance(x, str) for x in scopes):
        missing = [x for x in bundle.required_sources if x not in scopes]
        if missing:
            raise ConsentDenied(
                "scopes", f"the authorization does not cover source {missing[0]!r}, which measurement requires",
                f"scopes that include {', '.join(bundle.required_sources)}",
            )


def member_enterprises(session: Session, user_id: int, limit: int) -> list[tuple[m.Enterprise, str]]:
    """The enterprises a user acts for (as legal representative or delegate), oldest first, at most `limit`."""
    stmt = (select(m.Enterprise, m.Membership.relation).join(m.Membership, m.Membership.enterprise_id == m.Enterprise.id)
            .where(m.Membership.user_id == user_id).order_by(m.Enterprise.id).limit(limit))
    return [(ent, relation) for ent, relation in session.execute(stmt)]


def line_ids_of(session: Session, enterprise_id: int, limit: int) -> list[int]:
    """An enterprise's credit lines, newest first, at most `limit`."""
    stmt = select(m.CreditLine.id).where(m.CreditLine.enterprise_id == enterprise_id).order_by(m.CreditLine.id.desc()).limit(limit)
    return list(session.scalars(stmt))
