"""What a user can do in origination, each in its own unit of work.

The API, the web pages, the CLI and the story replay call these and only
these, with the `Actor` the interface authenticated and admitted (the table
in `sandu.security.authz`). Each returns a view of what its transaction read
and wrote, once that transaction — and the audit record of the change, written
in it — has committed: what an interface shows is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy.orm import Session

from sandu.audit import service as audit
from sandu.domain.errors import InvalidInput
from sandu.domain.money import MAX_AMOUNT_FEN, require_fen
from sandu.domain.project import Project
from sandu.origination import privacy, workflow
from sandu.origination import service as svc
from sandu.origination import whatif as whatif_svc
from sandu.origination.views import (
    ApplicationView,
    ConsentDetailView,
    ConsentHistoryView,
    ConsentReadsView,
    ConsentView,
    DecisionView,
    EnterpriseView,
    ErasureHistoryView,
    ErasureView,
    MyCreditView,
    MyEnterpriseView,
    ReferralPage,
    RefreshView,
    ScopesView,
    application_view,
    consent_detail_view,
    consent_view,
    decision_view,
    enterprise_view,
    erasure_view,
    referral_view,
    refresh_view,
    scopes_view,
    source_read_view,
)
from sandu.policy import whatif
from sandu.policy.bundle import MAX_SHOWN_ERRORS, PolicyBundle, PolicyError, line_of, parse_bundle
from sandu.policy.whatif import WhatIf
from sandu.runtime import Runtime
from sandu.security.actor import Actor
from sandu.servicing.alert_actions import scan_after_refresh
from sandu.servicing.service import line_view
from sandu.servicing.views import LineView

APPLY_CONSENT_DAYS = 30  # the validity of the consent the online application signs


def register(rt: Runtime, actor: Actor, *, uscc: str, name: str) -> EnterpriseView:
    """Register an applicant enterprise (no bank account needed), as its legal representative."""
    now = rt.now()
    with rt.uow.write() as s:
        ent = svc.register_enterprise(s, uscc=uscc, name=name, registrant=actor, pii_key=rt.settings.derived_key("pii"), now=now)
        audit.note(s, actor, "enterprise.register", "enterprise", ent.uscc, at=now, after=ent)
        view = enterprise_view(ent)
    return view


def get_enterprise(rt: Runtime, uscc: str) -> EnterpriseView:
    with rt.uow.read() as s:
        return enterprise_view(svc.get_enterprise(s, uscc))


def grant_consent(rt: Runtime, actor: Actor, *, uscc: str, scopes: list[str], purpose: str, valid_days: int,
                  bureau_authorization: bool = False, language: str = "zh") -> ConsentView:
    """One authorization (一次授权) for many data sources, signed by the legal representative; the
    credit bureau with its own authorization (征信授权书) in the same request."""
    now = rt.now()
    with rt.uow.write() as s:
        consent = svc.grant_consent(s, uscc=uscc, scopes=scopes, purpose=purpose, valid_days=valid_days, signer=actor, now=now,
                                    bureau_authorization=bureau_authorization, language=language)
        audit.note(s, actor, "consent.grant", "consent", consent.id, at=now, after=consent)
        view = consent_view(consent)
    return view


def revoke_consent(rt: Runtime, actor: Actor, consent_id: str) -> ConsentView:
    now = rt.now()
    with rt.uow.write() as s:
        consent = svc.get_consent(s, consent_id)
        before = audit.state_sha256(consent)
        consent = svc.revoke_consent(s, consent_id=consent_id, now=now)
        audit.note(s, actor, "consent.revoke", "consent", consent.id, at=now, before=before, after=consent)
        view = consent_view(consent)
    return view


def measure(rt: Runtime, actor: Actor, *, uscc: str, consent_id: str, requested_fen: int | None = None, project: Project | None = None,
            guarantee_fen: int | None = None) -> DecisionView:
    """测额: check the consent and read the consented sources through the runtime's adapters,
    concurrently and within their deadlines (a read transaction); build the profile, score and
    apply the policy (no transaction); then record the decision and the read log in one short
    write transaction."""
    now = rt.now()
    as_of = rt.today()
    with rt.uow.read() as s:
        prepared = svc.prepare_measurement(
            s, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, bundle=rt.bundle, requested_fen=requested_fen, project=project,
            guarantee_fen=guarantee_fen, reader=lambda sources, u, day: rt.read_sources(sources, u, day, session=s),  # on this read
        )
    computed = svc.compute_measurement(prepared, as_of, rt.bundle, rt.model, rt.tech)
    # What the write does not need to read is built before it takes the store's writer, and the answer after.
    draft = svc.draft_decision(prepared, computed, as_of=as_of, now=now, bundle=rt.bundle, model=rt.model, tech=rt.tech,
                               initiated_by=actor.user_id)
    kept = privacy.payload_rows(prepared, retention_days=_retention(rt))
    lapsed: svc.ConsentLapsed | None = None
    with rt.uow.write() as s:
        try:
            decision, ent = svc.record_decision(s, prepared, computed, draft, now=now, actor=actor)
        except svc.ConsentLapsed as exc:  # revoked while reading: only the read log is written, and committed
            lapsed = exc
        else:
            privacy.keep_rows(s, kept)
            audit.note(s, actor, "decision.record", "decision", decision.id, at=now, after=decision, after_ahead=draft.state_ahead)
    if lapsed is not None:
        raise lapsed
    view = decision_view(None, decision, draft.offers, ent)  # as committed: the offers as just written
    rt.metrics.decision(view.outcome)
    return view


def consent_scopes(language: str = "zh") -> ScopesView:
    """Each scope explained (what is read, what for, how long it is kept), shown before signing."""
    return scopes_view(language)


def get_consent(rt: Runtime, consent_id: str) -> ConsentDetailView:
    """A consent, its exact text verified against the hash stored with it, its scopes explained."""
    now = rt.now()
    with rt.uow.read() as s:
        c = svc.get_consent(s, consent_id)
        return consent_detail_view(s, c, svc.consent_status(c, now), svc.consent_text(s, consent_id))


def consent_reads(rt: Runtime, consent_id: str) -> ConsentReadsView:
    """Every read logged under a consent: source, adapter, time, duration, outcome, reason, payload hash."""
    now = rt.now()
    with rt.uow.read() as s:
        c = svc.get_consent(s, consent_id)
        ent = svc.enterprise_of_consent(s, c)
        return ConsentReadsView(consent_id=c.id, uscc=ent.uscc, status=svc.consent_status(c, now),
                                reads=[source_read_view(r) for r in svc.reads_of(s, consent_id)])


def consent_history(rt: Runtime, uscc: str) -> ConsentHistoryView:
    """Every consent of an enterprise, live, revoked or expired."""
    now = rt.now()
    with rt.uow.read() as s:
        return ConsentHistoryView(uscc=uscc, consents=[consent_detail_view(s, c, svc.consent_status(c, now), svc.consent_text(s, c.id))
                                                       for c in svc.consent_history(s, uscc)])


def get_decision(rt: Runtime, decision_id: str) -> DecisionView:
    with rt.uow.read() as s:
        d = svc.get_decision(s, decision_id)
        return decision_view(s, d, svc.offers_of(s, d.id))


def replay_decision(rt: Runtime, decision_id: str) -> dict[str, Any]:
    """Recompute a stored decision from its stored profile under the versions in force:
    {"identical": bool, "differences": keys that differ, "versions": which versions differ}."""
    with rt.uow.read() as s:
        d = svc.get_decision(s, decision_id)
        versions = svc.version_differences(d, rt.bundle, rt.model, rt.tech)
        if versions:
            return {"decision_id": d.id, "identical": False, "differences": [], "versions": versions}
        replayed = svc.replay(s, d.id, rt.bundle, rt.model, rt.tech).to_json()
        differences = svc.replay_differences(d, replayed)
        return {"decision_id": d.id, "identical": not differences, "differences": differences, "versions": []}


def _offer_change(rt: Runtime, actor: Actor, action: str, decision_id: str, product: str, change) -> DecisionView:
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(svc.offer_of(s, decision_id, product))
        offer = change(s, now)
        audit.note(s, actor, action, "offer", f"{decision_id}/{product}", at=now, before=before, after=offer)
        d = svc.get_decision(s, decision_id)
        view = decision_view(s, d, svc.offers_of(s, d.id))
    return view


def review_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str, opinion: str) -> DecisionView:
    """审: an officer reviews a referred offer."""
    return _offer_change(rt, actor, "offer.review", decision_id, product,
                         lambda s, now: svc.review_offer(s, decision_id=decision_id, product=product, reviewer=actor, opinion=opinion, now=now))


def approve_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str) -> DecisionView:
    """贷: someone other than the initiator and the reviewer approves, within their authority and the bundle's matrix."""
    return _offer_change(rt, actor, "offer.approve", decision_id, product,
                         lambda s, now: svc.approve_offer(s, decision_id=decision_id, product=product, approver=actor, now=now, bundle=rt.bundle))


def accept_offer(rt: Runtime, actor: Actor, *, decision_id: str, product: str) -> LineView:
    """The legal representative signs online; the approved part becomes a credit line."""
    today, now = rt.today(), rt.now()
    with rt.uow.write() as s:
        line = svc.accept_offer(s, decision_id=decision_id, product=product, signer=actor, as_of=today, now=now)
        audit.note(s, actor, "line.open", "line", line.id, at=now, after=line)
        view = line_view(s, line.id, today)
    return view


def apply_online(rt: Runtime, actor: Actor, *, uscc: str, name: str, scopes: list[str], requested_fen: int | None = None,
                 bureau_authorization: bool = False, language: str = "zh") -> DecisionView:
    """The mobile flow: register if new, authorize once, measure. Everything a request
    can get wrong is checked before the first write; registration and consent commit
    first (a consent must exist before any source is read), then the measurement."""
    if requested_fen is not None:
        require_fen(requested_fen, field="requested_fen", max_fen=MAX_AMOUNT_FEN)
    svc.check_scopes_cover(scopes, rt.bundle)
    now = rt.now()
    with rt.uow.write() as s:
        if svc.find_enterprise(s, uscc) is None:
            ent = svc.register_enterprise(s, uscc=uscc, name=name, registrant=actor, pii_key=rt.settings.derived_key("pii"), now=now)
            audit.note(s, actor, "enterprise.register", "enterprise", ent.uscc, at=now, after=ent)
        consent = svc.grant_consent(s, uscc=uscc, scopes=scopes, purpose="credit_measurement", valid_days=APPLY_CONSENT_DAYS, signer=actor,
                                    now=now, bureau_authorization=bureau_authorization, language=language)
        audit.note(s, actor, "consent.grant", "consent", consent.id, at=now, after=consent)
        consent_id = consent.id
    return measure(rt, actor, uscc=uscc, consent_id=consent_id, requested_fen=requested_fen)


def refresh_sources(rt: Runtime, actor: Actor, *, uscc: str, consent_id: str | None = None) -> RefreshView:
    """Read an existing customer's sources again under a live consent (the adapters, outside any
    write), then in one short write keep the new snapshot and the read log and scan the enterprise's open lines with
    the early-warning rules (previous snapshot against the new one), and say what changed: the refresh and the alerts
    it raises are committed together, or neither is."""
    from sandu.origination import refresh

    now = rt.now()
    as_of = rt.today()
    with rt.uow.read() as s:
        prepared = refresh.prepare_refresh(s, uscc=uscc, consent_id=consent_id, as_of=as_of, now=now, reader=rt.read_sources)
        previous = refresh.read_previous(s, prepared.enterprise_id)
    # What the write does not need to read is built before it takes the store's writer, as a measurement's is.
    profile = refresh.build_refresh(prepared, as_of)
    row, kept = svc.profile_values(prepared, profile, as_of=as_of, now=now), privacy.payload_rows(prepared, retention_days=_retention(rt))
    lapsed: svc.ConsentLapsed | None = None
    with rt.uow.write() as s:
        try:
            done, previous = refresh.record_refresh(s, prepared, profile, row=row, now=now, previous=previous)
        except svc.ConsentLapsed as exc:  # revoked while reading: only the read log is written, and committed
            lapsed = exc
        else:
            privacy.keep_rows(s, kept)
            audit.note(s, actor, "profile.refresh", "profile", done.profile_sha256, at=now, after=refresh.profile_row(s, done.profile_sha256))
            scanned = scan_after_refresh(s, rt, actor, enterprise_id=prepared.enterprise_id, previous=previous, profile=profile, now=now)
    if lapsed is not None:
        raise lapsed
    return refresh_view(done, scanned.alert_ids)


def _retention(rt: Runtime) -> dict[str, int]:
    return privacy.retention_of(rt.settings.sources_retention_days, rt.settings.source_retention_days)


def purge_payloads(rt: Runtime, actor: Actor) -> dict:
    """Delete the raw payloads and loose snapshots whose retention has run out (the scheduled purge), at most
    `privacy.MAX_PURGE_ROWS` of each, `privacy.PURGE_CHUNK_ROWS` per committed unit of work (each on the audit trail):
    {"deleted": {source: rows}, "left": payloads still due, "snapshots": snapshots deleted, "snapshots_left": still due}."""
    now = rt.now()
    deleted: dict[str, int] = {}

    def payloads(s: Session, limit: int) -> int:
        chunk = privacy.purge_due_payloads(s, now, limit)
        for source, rows in chunk.items():
            deleted[source] = deleted.get(source, 0) + rows
        return sum(chunk.values())

    _purge_in_chunks(rt, actor, now, payloads, "payloads.purge", "source_payloads")
    snapshots = _purge_in_chunks(rt, actor, now, lambda s, limit: privacy.purge_loose_snapshots(s, now, limit), "snapshots.purge", "profiles")
    with rt.uow.read() as s:
        left = privacy.purge_left(s, now)
    return {"deleted": dict(sorted(deleted.items())), "left": left["left"], "snapshots": snapshots, "snapshots_left": left["snapshots_left"]}


def _purge_in_chunks(rt: Runtime, actor: Actor, now: datetime, purge: Callable[[Session, int], int], action: str, object_type: str) -> int:
    """`purge(session, limit)` in committed units of work of at most `privacy.PURGE_CHUNK_ROWS` rows each, until it
    finds fewer than asked or `privacy.MAX_PURGE_ROWS` are gone: how many rows it deleted."""
    done = 0
    while done < privacy.MAX_PURGE_ROWS:
        limit = min(privacy.PURGE_CHUNK_ROWS, privacy.MAX_PURGE_ROWS - done)
        with rt.uow.write() as s:
            n = purge(s, limit)
            assert 0 <= n <= limit, (n, limit)
            if n:
                audit.note(s, actor, action, object_type, f"{n} rows", at=now)
        done += n
        if n < limit:
            break
    return done


def erase_enterprise(rt: Runtime, actor: Actor, *, uscc: str, reason: str) -> ErasureView:
    """Carry out an applicant's erasure request (PIPL art. 47): what was removed, what was kept and why."""
    now = rt.now()
    with rt.uow.write() as s:
        e = privacy.erase_enterprise(s, uscc=uscc, reason=reason, requested_by=actor.user_id, now=now)
        audit.note(s, actor, "enterprise.erase", "erasure", e.id, at=now, after=e)
        view = erasure_view(e, uscc)
    return view


def erasure_history(rt: Runtime, uscc: str) -> ErasureHistoryView:
    """The erasure requests carried out for an enterprise, newest first."""
    with rt.uow.read() as s:
        return ErasureHistoryView(uscc=uscc, erasures=[erasure_view(e, uscc) for e in privacy.erasures_of(s, uscc)])


MAX_POLICY_BYTES = 60_000  # a bundle is ~10 kB; an API body is at most 64 KiB


def policy_from_text(text: str) -> PolicyBundle:
    """A bundle submitted as text (the console's what-if), or `InvalidInput` naming each problem's key and line."""
    if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise InvalidInput("policy", f"must be the text of a policy bundle of at most {MAX_POLICY_BYTES} bytes", "a policy bundle (TOML)")
    try:
        return parse_bundle(text.encode("utf-8"))
    except PolicyError as exc:
        where = "; ".join(f"line {line_of(text, p) or 1}: {p or '(file)'}: {r}" for p, r in exc.problems[:MAX_SHOWN_ERRORS])
        raise InvalidInput("policy", where, "a bundle that `sandu policy check` accepts") from None


def simulate_policy(rt: Runtime, *, policy: PolicyBundle, since: date | None = None, table: pl.DataFrame | None = None,
                    max_changes: int = 100) -> WhatIf:
    """Past applications re-decided under `policy` and under the bundle in force: each enterprise's latest decision
    since `since` (through today), or the applications of `table`."""
    if (since is None) == (table is None):
        raise InvalidInput("since", "give either a first day or a table of applications", "one of them")
    if table is None:
        assert since is not None
        with rt.uow.read() as s:
            table = whatif_svc.applications_since(s, since, rt.today())
    return whatif.compare(rt.bundle, policy, table, max_changes)
# --- the application workflow ------------------------------------------------------------------------------------


def get_application(rt: Runtime, application_id: int) -> ApplicationView:
    """An application: its state, what it may do now, its decisions, its human review, every transition."""
    with rt.uow.read() as s:
        return application_view(s, workflow.get_application(s, application_id))


def _application_change(rt: Runtime, actor: Actor, action: str, application_id: int, change) -> ApplicationView:
    """One change of an application in one unit of work, audited with its state before and after."""
    now = rt.now()
    with rt.uow.write() as s:
        before = audit.state_sha256(workflow.get_application(s, application_id))
        app = change(s, now)
        audit.note(s, actor, action, "application", app.id, at=now, before=before, after=app)
    return get_application(rt, app.id)  # as committed, read after the write: the view's reads hold no writer


def withdraw_application(rt: Runtime, actor: Actor, *, application_id: int, reason: str) -> ApplicationView:
    """The legal representative withdraws an application not yet signed."""
    return _application_change(rt, actor, "application.withdraw", application_id,
                               lambda s, now: workflow.withdraw(s, application_id=application_id, actor=actor, reason=reason, now=now))


def reject_application(rt: Runtime, actor: Actor, *, application_id: int, reason: str) -> ApplicationView:
    """拒绝: an officer or approver of the sub-branch declines a referred application; the applicant sees it declined."""
    return _application_change(rt, actor, "application.reject", application_id,
                               lambda s, now: workflow.reject(s, application_id=application_id, actor=actor, reason=reason, now=now))


def _review_change(rt: Runtime, actor: Actor, action: str, decision_id: str, change) -> ApplicationView:
    now = rt.now()
    with rt.uow.write() as s:
        review = change(s, now)
        audit.note(s, actor, action, "human_review", review.id, at=now, after=review)
    return get_application(rt, review.application_id)  # as committed, read after the write: the view's reads hold no writer


def request_human_review(rt: Runtime, actor: Actor, *, decision_id: str, reason: str) -> ApplicationView:
    """PIPL art. 24: the legal representative asks, once per declined decision, for a person to review it; it lands
    in the sub-branch's referral queue with the decision attached."""
    return _review_change(rt, actor, "human_review.request", decision_id,
                          lambda s, now: svc.request_human_review(s, decision_id=decision_id, requester=actor, reason=reason, now=now))


def review_human_review(rt: Runtime, actor: Actor, *, decision_id: str, outcome: str, opinion: str) -> ApplicationView:
    """审: an officer of the sub-branch reviews the request and proposes upheld, or reassess (a new assessment)."""
    return _review_change(rt, actor, "human_review.review", decision_id,
                          lambda s, now: svc.review_human_review(s, decision_id=decision_id, reviewer=actor, outcome=outcome, opinion=opinion,
                                                                 now=now))


def decide_human_review(rt: Runtime, actor: Actor, *, decision_id: str) -> ApplicationView:
    """贷: someone other than the reviewer confirms the outcome; the applicant sees it on the application."""
    return _review_change(rt, actor, "human_review.decide", decision_id,
                          lambda s, now: svc.decide_human_review(s, decision_id=decision_id, approver=actor, now=now))


def referrals(rt: Runtime, actor: Actor, *, branch: str | None = None, limit: int = 50, offset: int = 0) -> ReferralPage:
    """The referral queue: an officer's or approver's own sub-branch, any for an admin; oldest first, with ages."""
    now = rt.now()
    which = workflow.queue_branch(actor, branch)
    with rt.uow.read() as s:
        page, total = workflow.referral_queue(s, branch=which, limit=limit, offset=offset)
        views = [referral_view(r, now) for r in page]
    return ReferralPage(branch=which, total=total, offset=offset, limit=limit,
                        next_offset=offset + len(views) if offset + len(views) < total else None, referrals=views)


MAX_MY_ENTERPRISES = 50  # an applicant acts for a handful of enterprises
MAX_MY_LINES = 100  # lines shown per enterprise, newest first


def my_credit(rt: Runtime, actor: Actor) -> MyCreditView:
    """The applicant's home: each enterprise they act for, its decision in force and its lines (as their owner sees them)."""
    today = rt.today()
    out = []
    with rt.uow.read() as s:
        for ent, relation in svc.member_enterprises(s, actor.user_id, MAX_MY_ENTERPRISES):
            d = svc.get_decision(s, ent.live_decision_id) if ent.live_decision_id else None
            out.append(MyEnterpriseView(uscc=ent.uscc, name=ent.name, relation=relation, decision_id=None if d is None else d.id,
                                        outcome=None if d is None else d.outcome,
                                        comprehensive_limit_fen=None if d is None else d.comprehensive_limit_fen,
                                        application_id=None if d is None else d.application_id,
                                        lines=[line_view(s, line_id, today) for line_id in svc.line_ids_of(s, ent.id, MAX_MY_LINES)]))
    return MyCreditView(enterprises=out)
