"""Post-loan early warning (贷后预警): the bundle's `[[early_warning]]` rules over what is known of one credit line.

Pure: facts in (the enterprise's previous and refreshed profile features, the line's worst drawing here), alerts out.
No clock: the business date is a fact. What each kind of rule compares, exactly (Decimal, never float):

- ``drop``: before > 0 and after ≥ 0 are both evidenced and (before − after) ≥ threshold × before — a drop of at least
  `threshold` of the previous value (the boundary itself raises);
- ``rise``: after − before ≥ threshold (whole counts);
- ``at_most`` / ``at_least``: the refreshed value ≤ / ≥ threshold (a ratio the profile keeps as a 6-place float is
  read through its shortest decimal text, so "-0.4" is exactly -0.40);
- ``dpd_above``: the worst open drawing of the line is more than `threshold` days past due.

A rule whose values are not evidenced (a feature absent from either profile, no refreshed profile yet, no previous
profile for a comparison) raises nothing: absence is not a signal here — the refresh's data-quality flags say it.
Each alert carries its evidence (the rule and its threshold, the values compared, the profiles and their dates, or
the drawing and its days past due) and an `evidence_key`: the same evidence never raises a rule twice on a line
(the refreshed profile's hash; for days past due the drawing and the due date its arrears run from).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sandu.policy.bundle import EarlyWarningRule

MAX_RULES = 100  # the bundle's limit on [[early_warning]] rows (MAX_TABLE_KEYS)


@dataclass(frozen=True)
class ProfileFacts:
    """A stored profile snapshot of the line's enterprise: its hash, its as-of date, its features."""

    sha256: str
    as_of: date
    features: dict[str, Any]


@dataclass(frozen=True)
class DrawingFacts:
    """The line's drawing furthest past due here (the ledger's ageing)."""

    drawing_id: int
    dpd: int
    oldest_due_on: date | None


@dataclass(frozen=True)
class LineFacts:
    line_id: int
    as_of: date  # the business date of the scan
    previous: ProfileFacts | None  # the snapshot before the refreshed one
    current: ProfileFacts | None  # the refreshed (latest) snapshot
    worst_drawing: DrawingFacts | None = None


@dataclass(frozen=True)
class Alert:
    rule_id: str
    severity: str
    action: str  # the rule's proposal: review | freeze | reduce_limit
    reduce_to: Decimal | None
    summary: str
    evidence_key: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _number(value: Any) -> Decimal | None:
    """A feature value as an exact Decimal, or None when it is not a finite number (absent, text, a list, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    return Decimal(value)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _profile_evidence(rule: EarlyWarningRule, facts: LineFacts, before: Decimal | None, after: Decimal) -> dict[str, Any]:
    current = facts.current
    assert current is not None, "a profile rule is evaluated on a refreshed profile"
    out: dict[str, Any] = {"rule": rule.id, "watch": rule.watch, "feature": rule.feature, "threshold": str(rule.threshold),
                           "after": current.features[rule.feature], "after_as_of": current.as_of.isoformat(), "after_profile": current.sha256,
                           "scanned_on": facts.as_of.isoformat()}
    if before is not None and facts.previous is not None:
        out.update(before=facts.previous.features[rule.feature], before_as_of=facts.previous.as_of.isoformat(), before_profile=facts.previous.sha256)
        if rule.watch == "drop":
            out["drop"] = str(((before - after) / before).quantize(Decimal("0.0001")))
        else:
            out["change"] = _plain(after - before)
    return out


def _profile_rule(rule: EarlyWarningRule, facts: LineFacts) -> Alert | None:
    if facts.current is None or rule.feature is None:
        return None
    after = _number(facts.current.features.get(rule.feature))
    if after is None:
        return None
    t = rule.threshold
    if rule.watch in ("at_most", "at_least"):
        hit = after <= t if rule.watch == "at_most" else after >= t
        if not hit:
            return None
        sign = "≤" if rule.watch == "at_most" else "≥"
        summary = f"{rule.feature} is {_plain(after)}, {sign} {_plain(t)}"
        return _alert(rule, summary, facts.current.sha256, _profile_evidence(rule, facts, None, after))
    if facts.previous is None or facts.previous.sha256 == facts.current.sha256:
        return None
    before = _number(facts.previous.features.get(rule.feature))
    if before is None:
        return None
    if rule.watch == "drop":
        if before <= 0 or after < 0 or before - after < t * before:
            return None
        summary = f"{rule.feature} fell from {_plain(before)} to {_plain(after)} ({(before - after) / before:.1%}), a drop of at least {t:.0%}"
    else:  # rise
        if after - before < t:
            return None
        summary = f"{rule.feature} rose from {_plain(before)} to {_plain(after)} (+{_plain(after - before)}), at least +{_plain(t)}"
    return _alert(rule, summary, facts.current.sha256, _profile_evidence(rule, facts, before, after))


def _dpd_rule(rule: EarlyWarningRule, facts: LineFacts) -> Alert | None:
    d = facts.worst_drawing
    if d is None or d.dpd <= rule.threshold:
        return None
    since = d.oldest_due_on.isoformat() if d.oldest_due_on is not None else "unknown"
    evidence = {"rule": rule.id, "watch": rule.watch, "threshold": str(rule.threshold), "drawing_id": d.drawing_id, "dpd": d.dpd,
                "oldest_due_on": since, "scanned_on": facts.as_of.isoformat()}
    return _alert(rule, f"drawing {d.drawing_id} is {d.dpd} days past due (unpaid since {since}), more than {_plain(rule.threshold)}",
                  f"drawing:{d.drawing_id}:{since}", evidence)


def _alert(rule: EarlyWarningRule, summary: str, key: str, evidence: dict[str, Any]) -> Alert:
    return Alert(rule.id, rule.severity, rule.action, rule.reduce_to, summary, key, evidence)


def evaluate(rules: tuple[EarlyWarningRule, ...], facts: LineFacts) -> list[Alert]:
    """The alerts `rules` raise on one line, in the rules' order."""
    if len(rules) > MAX_RULES:
        raise ValueError(f"rules: {len(rules)} early-warning rules, more than {MAX_RULES}")
    alerts = []
    for rule in rules:
        alert = _dpd_rule(rule, facts) if rule.watch == "dpd_above" else _profile_rule(rule, facts)
        if alert is not None:
            alerts.append(alert)
    return alerts


def reduced_limit_fen(limit_fen: int, drawn_fen: int, reduce_to: Decimal, round_down_fen: int) -> int:
    """The limit a reduce_limit proposal keeps: `reduce_to` of the limit, rounded down to `round_down_fen`, never below
    what is drawn."""
    assert 0 < reduce_to < 1 and round_down_fen >= 1 and 0 <= drawn_fen <= limit_fen, (reduce_to, round_down_fen, drawn_fen, limit_fen)
    kept = int(Decimal(limit_fen) * reduce_to) // round_down_fen * round_down_fen
    return max(kept, drawn_fen)
