"""Who may do what to which object: the one authorization table of sandu.

Each API route (by its name) has a `Rule`: the roles allowed, and for each role the
objects it may reach — `MEMBER` (an applicant's own enterprises: it is their legal
representative or a delegate), `LEGAL_REP` (only as the legal representative),
`BRANCH` (staff: enterprises of their sub-branch), `ANY` (everything), `NONE`
(the route names no object). A role not in the rule gets 403 naming the rule; an
object outside the role's reach answers 404, exactly like an object that does not
exist (no existence oracle). `fresh` routes need a password given within the last
`SANDU_REAUTH_MINUTES`; `limit` names the per-identity rate limit that applies.

`sandu authz table` prints this table; tests walk the app's routes against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sandu.domain.enums import Role


class Reach(StrEnum):
    NONE = "none"  # the route names no object
    MEMBER = "member"
    LEGAL_REP = "legal_rep"
    BRANCH = "branch"
    ANY = "any"


class ObjectKind(StrEnum):
    ENTERPRISE = "enterprise"  # path parameter uscc
    CONSENT = "consent"  # consent_id
    DECISION = "decision"  # decision_id
    LINE = "line"  # line_id
    APPLICATION = "application"  # application_id
    ALERT = "alert"  # alert_id (an early-warning alert on a line)


PATH_PARAM = {ObjectKind.ENTERPRISE: "uscc", ObjectKind.CONSENT: "consent_id", ObjectKind.DECISION: "decision_id", ObjectKind.LINE: "line_id",
              ObjectKind.APPLICATION: "application_id", ObjectKind.ALERT: "alert_id"}


@dataclass(frozen=True)
class Rule:
    roles: dict[Role, Reach] = field(default_factory=dict)  # empty and public: anyone, no token
    object: ObjectKind | None = None
    public: bool = False
    fresh: bool = False  # needs a recent password (signing, drawing)
    limit: str | None = None  # the rate limit that applies: "measure", "movement", "signup"
    writes: bool = True

    def __post_init__(self) -> None:
        assert self.public == (not self.roles), "a rule is public exactly when it names no role"
        needs_object = any(r not in (Reach.NONE, Reach.ANY) for r in self.roles.values())
        assert not needs_object or self.object is not None, "an object reach needs the route's object"


A, O, P, K, X, D, U = Role.APPLICANT, Role.OFFICER, Role.APPROVER, Role.RISK, Role.OPERATIONS, Role.ADMIN, Role.AUDITOR
READ_ENTERPRISE = {A: Reach.MEMBER, O: Reach.BRANCH, P: Reach.BRANCH, K: Reach.ANY, D: Reach.ANY, U: Reach.ANY}
EVERYONE = {role: Reach.NONE for role in Role}
READ_CONSENT = {**READ_ENTERPRISE, A: Reach.LEGAL_REP}  # a consent is the legal representative's act: delegates do not read it

TABLE: dict[str, Rule] = {
    # identities
    "auth.signup": Rule(public=True, limit="signup"),
    "auth.token": Rule(public=True),
    "auth.refresh": Rule(public=True),
    "auth.logout": Rule(public=True),
    "auth.me": Rule(EVERYONE, writes=False),
    "users.create": Rule({D: Reach.NONE}),
    "users.list": Rule({D: Reach.NONE, U: Reach.NONE}, writes=False),
    "users.disable": Rule({D: Reach.NONE}),
    # origination
    "enterprises.register": Rule({A: Reach.NONE}),
    "enterprises.get": Rule(READ_ENTERPRISE, ObjectKind.ENTERPRISE, writes=False),
    "enterprises.delegates.add": Rule({A: Reach.LEGAL_REP}, ObjectKind.ENTERPRISE),
    "enterprises.consents.grant": Rule({A: Reach.LEGAL_REP}, ObjectKind.ENTERPRISE),
    "enterprises.measure": Rule({A: Reach.MEMBER, O: Reach.BRANCH}, ObjectKind.ENTERPRISE, limit="measure"),
    "enterprises.consents.history": Rule(READ_CONSENT, ObjectKind.ENTERPRISE, writes=False),
    "enterprises.refresh": Rule({O: Reach.BRANCH, K: Reach.ANY}, ObjectKind.ENTERPRISE),  # monitoring: re-read under the customer's live consent
    "enterprises.erase": Rule({O: Reach.BRANCH, D: Reach.ANY}, ObjectKind.ENTERPRISE, fresh=True),  # an applicant's request, carried out by staff
    "enterprises.erasures": Rule(READ_CONSENT, ObjectKind.ENTERPRISE, writes=False),
    "consents.scopes": Rule(EVERYONE, writes=False),  # what each scope means, shown before signing
    "consents.get": Rule(READ_CONSENT, ObjectKind.CONSENT, writes=False),
    "consents.reads": Rule(READ_CONSENT, ObjectKind.CONSENT, writes=False),
    "consents.revoke": Rule({A: Reach.LEGAL_REP}, ObjectKind.CONSENT),
    "decisions.get": Rule(READ_ENTERPRISE, ObjectKind.DECISION, writes=False),
    "decisions.review": Rule({O: Reach.BRANCH}, ObjectKind.DECISION),
    "decisions.approve": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.DECISION),
    "decisions.accept": Rule({A: Reach.LEGAL_REP}, ObjectKind.DECISION, fresh=True),
    "reports.portfolio": Rule({O: Reach.NONE, P: Reach.NONE, K: Reach.NONE, D: Reach.NONE, U: Reach.NONE}, writes=False),  # officers: theirs
    "policy.simulate": Rule({K: Reach.NONE, D: Reach.NONE, U: Reach.NONE}, writes=False),  # what-if over every sub-branch's applications
    # the application workflow: human review of a decline (PIPL art. 24), asked by the applicant, reviewed and decided by two people
    "decisions.human_review.request": Rule({A: Reach.MEMBER}, ObjectKind.DECISION),  # a delegate is told (403) that only the legal rep may
    "decisions.human_review.review": Rule({O: Reach.BRANCH}, ObjectKind.DECISION),
    "decisions.human_review.decide": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.DECISION),
    "applications.get": Rule(READ_ENTERPRISE, ObjectKind.APPLICATION, writes=False),
    "applications.withdraw": Rule({A: Reach.MEMBER}, ObjectKind.APPLICATION),  # the service refuses anyone but the legal rep (403)
    "applications.decline": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.APPLICATION),  # 拒绝 a referred application
    "referrals.list": Rule({O: Reach.NONE, P: Reach.NONE, D: Reach.NONE}, writes=False),  # officers and approvers: their sub-branch; admin: any
    # servicing
    "lines.get": Rule(READ_ENTERPRISE, ObjectKind.LINE, writes=False),
    "lines.journal": Rule(READ_ENTERPRISE, ObjectKind.LINE, writes=False),
    "lines.draw": Rule({A: Reach.MEMBER}, ObjectKind.LINE, fresh=True, limit="movement"),
    "lines.repay": Rule({A: Reach.MEMBER}, ObjectKind.LINE, limit="movement"),
    "lines.freeze": Rule({O: Reach.BRANCH, K: Reach.ANY}, ObjectKind.LINE),
    "lines.unfreeze": Rule({O: Reach.BRANCH, K: Reach.ANY}, ObjectKind.LINE),
    "lines.reduce": Rule({O: Reach.BRANCH, P: Reach.BRANCH, K: Reach.ANY}, ObjectKind.LINE),
    "lines.renew": Rule({P: Reach.BRANCH}, ObjectKind.LINE),
    "lines.close": Rule({O: Reach.BRANCH}, ObjectKind.LINE),
    "lines.drawings": Rule(READ_ENTERPRISE, ObjectKind.LINE, writes=False),
    "lines.drawing": Rule(READ_ENTERPRISE, ObjectKind.LINE, writes=False),
    "lines.statement": Rule(READ_ENTERPRISE, ObjectKind.LINE, writes=False),
    "lines.prepay": Rule({A: Reach.MEMBER}, ObjectKind.LINE, limit="movement"),
    "lines.classify": Rule({O: Reach.BRANCH, K: Reach.ANY}, ObjectKind.LINE),  # an officer's or risk's 五级分类, never better than the rule
    "operations.eod": Rule({X: Reach.NONE}),
    # post-loan early warning: the officers and approvers of the line's sub-branch work its alerts; an officer proposes,
    # another person within their authority approves (maker-checker in sandu.servicing.alerts)
    "alerts.list": Rule({O: Reach.NONE, P: Reach.NONE}, writes=False),  # their own sub-branch's (another's: 403 alerts.branch)
    "alerts.get": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.ALERT, writes=False),
    "alerts.acknowledge": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.ALERT),
    "alerts.propose": Rule({O: Reach.BRANCH}, ObjectKind.ALERT),
    "alerts.approve": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.ALERT),
    "alerts.reject": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.ALERT),
    "alerts.dismiss": Rule({O: Reach.BRANCH, P: Reach.BRANCH}, ObjectKind.ALERT),
    # the trail
    "audit.list": Rule({U: Reach.NONE}, writes=False),
    # the applicant's web pages (same identities, through a session cookie)
    "web.apply": Rule({A: Reach.NONE}, limit="measure"),
    "web.decision": Rule(READ_ENTERPRISE, ObjectKind.DECISION, writes=False),
    # the staff console (/console): staff only; each page and action is then admitted by the API route it stands for
    "web.console": Rule({O: Reach.NONE, P: Reach.NONE, K: Reach.NONE, D: Reach.NONE, U: Reach.NONE}, writes=False),
}


def rule_for(route_name: str) -> Rule:
    """The rule of a route; a route without one is a programming error caught at start-up."""
    try:
        return TABLE[route_name]
    except KeyError:
        raise LookupError(f"route {route_name!r} has no rule in sandu.security.authz.TABLE") from None


def table_rows() -> list[tuple[str, str, str]]:
    """(route, role, reach) for every allowed pair, for printing."""
    rows = []
    for name, rule in TABLE.items():
        if rule.public:
            rows.append((name, "anyone (no token)", "-"))
        for role, reach in rule.roles.items():
            extra = " · fresh password" if rule.fresh else ""
            extra += f" · rate limit {rule.limit}" if rule.limit else ""
            rows.append((name, str(role), f"{reach}{'' if rule.object is None else ' ' + str(rule.object)}{extra}"))
    return rows
