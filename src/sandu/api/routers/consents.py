"""Consents: what each scope means before signing, the exact text agreed to, every read made
under a consent; revocation stops further reads at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sandu.api import schemas as s
from sandu.api.deps import RT, AsActor, AsConsentActor, ConsentIdPath, errors
from sandu.api.routing import SanduRoute
from sandu.origination import actions
from sandu.origination.views import ConsentDetailView, ConsentReadsView, ConsentView, ScopesView

router = APIRouter(prefix="/consents", tags=["origination"], route_class=SanduRoute)


@router.get("/scopes", name="consents.scopes", response_model=ScopesView, responses=errors())
def scopes(actor: AsActor, lang: Annotated[s.Language, Query(description="zh (default) or en")] = "zh") -> ScopesView:
    """Each data source a consent can cover, explained before signing: 读取什么 (what is read), 用于什么 (what for),
    保存多久 (how long it is kept) — in plain Chinese; in English only when `lang=en`."""
    return actions.consent_scopes(lang)


@router.get("/{consent_id}", name="consents.get", response_model=ConsentDetailView, responses=errors(404))
def get_consent(consent_id: ConsentIdPath, actor: AsConsentActor, rt: RT) -> ConsentDetailView:
    """The consent, the exact text agreed to (verified against its sha256), the credit-bureau authorization, the scopes explained."""
    return actions.get_consent(rt, consent_id)


@router.get("/{consent_id}/reads", name="consents.reads", response_model=ConsentReadsView, responses=errors(404))
def consent_reads(consent_id: ConsentIdPath, actor: AsConsentActor, rt: RT) -> ConsentReadsView:
    """Every read logged under the consent: source, adapter, time, duration, outcome, reason, payload sha256."""
    return actions.consent_reads(rt, consent_id)


@router.post("/{consent_id}/revoke", name="consents.revoke", response_model=ConsentView, responses=errors(404, 503))
def revoke_consent(consent_id: ConsentIdPath, actor: AsConsentActor, rt: RT) -> ConsentView:
    return actions.revoke_consent(rt, actor, consent_id)
