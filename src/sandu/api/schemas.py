"""Request bodies and parameters of the HTTP API: strict (no silent coercion, no
unknown fields) and documented with the constraints the server enforces, so
that the OpenAPI document tells a client exactly what is accepted.

The rules themselves live in the domain and the services (identifier check
characters, free-text rules, amount bounds, date layout); these types state
them for the wire. Responses are the services' views.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from sandu.audit.actions import MAX_AUDIT_PAGE
from sandu.domain.dates import parse_iso_date
from sandu.domain.enums import Role
from sandu.domain.errors import InvalidInput
from sandu.domain.ids import validate_resident_id, validate_uscc
from sandu.domain.keys import MAX_ROW_ID, UUID_PATTERN
from sandu.domain.money import MAX_AMOUNT_FEN
from sandu.domain.numbers import whole_number
from sandu.domain.project import Project
from sandu.domain.text import MAX_NAME_LENGTH, PLAIN_TEXT_PATTERN, plain_text
from sandu.origination.service import MAX_CONSENT_DAYS, MAX_OPINION_LENGTH, PURPOSES
from sandu.origination.workflow import MAX_REFERRAL_OFFSET, MAX_REFERRAL_PAGE, REVIEW_OUTCOMES
from sandu.security.actions import MAX_USER_PAGE
from sandu.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_new_password
from sandu.security.service import MAX_BRANCH_LENGTH, USERNAME, USERNAME_ALLOWED
from sandu.servicing.service import KEY_PATTERN, MAX_JOURNAL_PAGE, MAX_KEY_LENGTH
from sandu.sources.catalog import ALL_SOURCES
from sandu.sources.consent_text import LANGUAGES

PRODUCT_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
IDEMPOTENCY_KEY_PATTERN = f"^{KEY_PATTERN.pattern}$"


def _text(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return plain_text(value, "", max_length=max_length)
        except InvalidInput as exc:
            raise ValueError(f"{exc.reason} (allowed: {exc.allowed})") from None

    return check


def _checked(validate: Callable[..., str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return validate(value, field="")
        except InvalidInput as exc:
            raise ValueError(f"{exc.message.removeprefix(': ')}") from None

    return check


# Identifiers with check characters: JSON Schema cannot state a checksum, so the document
# names the format (and describes it); the server checks it and says what is wrong.
USCC_DESCRIPTION = ("统一社会信用代码 (GB 32100-2015): 18 characters of 0-9 A-H J-N P-R T U W-Y; positions 3-8 a region code; "
                    "the 18th the mod-31 check character")
RESIDENT_ID_DESCRIPTION = "resident ID (GB 11643-1999): 6-digit address, 8-digit birth date, 3-digit sequence, ISO 7064 MOD 11-2 check character (0-9 or X)"
checked_uscc = _checked(validate_uscc)
Uscc = Annotated[StrictStr, Field(json_schema_extra={"format": "uscc"}, description=USCC_DESCRIPTION, examples=["91350100M000100Y43"]),
                 AfterValidator(checked_uscc)]
ResidentId = Annotated[StrictStr, Field(json_schema_extra={"format": "resident-id"}, description=RESIDENT_ID_DESCRIPTION, examples=["11010519491231002X"]),
                       AfterValidator(_checked(validate_resident_id))]
def whole(ge: int, le: int, description: str | None = None) -> Any:
    """An integer within ge..le that may arrive as an exact JSON number like 2.0."""
    return Annotated[StrictInt, Field(ge=ge, le=le, description=description), BeforeValidator(whole_number)]

Name = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra={"pattern": PLAIN_TEXT_PATTERN},
          description="printable text: no control or invisible characters, no leading or trailing spaces"),
    AfterValidator(_text(MAX_NAME_LENGTH)),
]
Opinion = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_OPINION_LENGTH, json_schema_extra={"pattern": PLAIN_TEXT_PATTERN}),
    AfterValidator(_text(MAX_OPINION_LENGTH)),
]
Username = Annotated[StrictStr, Field(min_length=3, max_length=64, pattern=f"^{USERNAME.pattern}$", description=USERNAME_ALLOWED)]
Password = Annotated[StrictStr, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, json_schema_extra={"format": "password"},
                                      description=f"{MIN_PASSWORD_LENGTH}..{MAX_PASSWORD_LENGTH} characters, not only spaces"),
                     AfterValidator(lambda v: _checked_password(v))]
Branch = Annotated[StrictStr, Field(min_length=1, max_length=MAX_BRANCH_LENGTH, json_schema_extra={"pattern": PLAIN_TEXT_PATTERN}),
                   AfterValidator(_text(MAX_BRANCH_LENGTH))]


def _checked_password(value: str) -> str:
    try:
        return check_new_password(value)
    except InvalidInput as exc:
        raise ValueError(exc.reason) from None
Fen = whole(1, MAX_AMOUNT_FEN, f"fen (1 元 = 100 fen), 1..{MAX_AMOUNT_FEN}")
IsoDate = Annotated[date, BeforeValidator(parse_iso_date), Field(description="a calendar date, YYYY-MM-DD")]
UuidText = Annotated[StrictStr, Field(min_length=36, max_length=36, pattern=UUID_PATTERN)]
SourceName = Literal[ALL_SOURCES]  # type: ignore[valid-type]
Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
Language = Literal[LANGUAGES]  # type: ignore[valid-type]


def _unique(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError("lists a data source twice (allowed: each source at most once)")
    return values


class Strict(BaseModel):
    """No unknown fields; every field's type is strict on its own (no "1" for 1, no 1 for "1")."""

    model_config = ConfigDict(extra="forbid")


class EnterpriseIn(Strict):
    """The applicant registers, as its legal representative, the enterprise of this USCC."""

    uscc: Uscc
    name: Name


class ConsentIn(Strict):
    """Signed by the authenticated legal representative in person."""

    # The document says what the server enforces: the bureau's own authorization exactly when its scope is asked.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "if": {"properties": {"scopes": {"contains": {"const": "credit_bureau"}}}, "required": ["scopes"]},
        "then": {"properties": {"bureau_authorization": {"const": True}}, "required": ["bureau_authorization"]},
        "else": {"properties": {"bureau_authorization": {"const": False}}},
    })

    scopes: Annotated[
        list[SourceName], Field(min_length=1, max_length=len(ALL_SOURCES), json_schema_extra={"uniqueItems": True}, examples=[list(ALL_SOURCES)]),
        AfterValidator(_unique),
    ]
    purpose: Purpose = "credit_measurement"
    valid_days: whole(1, MAX_CONSENT_DAYS) = 30  # type: ignore[valid-type]
    bureau_authorization: StrictBool = Field(False, description="the separate credit-bureau authorization (征信授权书), signed in the same "
                                                                "request: required exactly when scopes include credit_bureau")
    language: Language = Field("zh", description="the language of the consent text shown and signed: zh (default) or en")


class MeasurementIn(Strict):
    consent_id: UuidText
    requested_fen: Fen | None = None  # type: ignore[valid-type]
    project: Project | None = None
    guarantee_fen: Fen | None = Field(default=None, description="担保: a financing guarantee arranged for the enterprise, in fen (a guarantee "  # type: ignore[valid-type]
                                                               "company's letter); it backs a 担保快贷 line of guarantee ÷ the policy's coverage ratio")


class ProfileRefreshIn(Strict):
    consent_id: UuidText | None = Field(default=None, description="read under this consent (default: the enterprise's latest live one)")


class ErasureIn(Strict):
    reason: Opinion = Field(description="the erasure request's reference: who asked, when, how (PIPL art. 47)")


class SimulationIn(Strict):
    """A changed policy bundle tried against past applications."""

    policy: StrictStr = Field(min_length=1, max_length=60_000, description="the changed bundle's text (TOML), as `sandu policy check` reads it",
                              json_schema_extra={"format": "policy-bundle"})
    since: IsoDate = Field(description="re-decide each enterprise's latest decision made on or after this day")
    max_changes: StrictInt = Field(default=100, ge=0, le=10_000, description="outcome changes listed, largest limit change first")


class ReviewIn(Strict):
    opinion: Opinion = Field(description="the reviewing officer's opinion (审查意见)")


class HumanReviewIn(Strict):
    reason: Opinion = Field(description="why the applicant asks for a person to review the automated decline (PIPL art. 24), ≤ 1000 characters")


class HumanReviewOutcomeIn(Strict):
    outcome: Literal[REVIEW_OUTCOMES] = Field(description="upheld: the decline stands; reassess: referred for a new assessment")  # type: ignore[valid-type]
    opinion: Opinion = Field(description="the reviewing officer's opinion (审查意见)")


class WithdrawIn(Strict):
    reason: Opinion = Field(description="why the applicant withdraws")


class RejectIn(Strict):
    reason: Opinion = Field(description="why the application is declined (拒绝理由), shown to the applicant in its history")


class SignupIn(Strict):
    """An applicant signs up alone: a username, a password, and who they are."""

    username: Username
    password: Password
    resident_id: ResidentId = Field(description="the applicant's own resident ID (kept only masked and as a keyed hash)")


class _NewUser(Strict):
    username: Username
    password: Password


class StaffIn(_NewUser):
    """Staff without a sub-branch: risk, operations, admin, auditor."""

    role: Literal[Role.RISK, Role.OPERATIONS, Role.ADMIN, Role.AUDITOR]


class BranchStaffIn(_NewUser):
    """Officers and approvers belong to a sub-branch and approve within an authority."""

    role: Literal[Role.OFFICER, Role.APPROVER]
    branch: Branch
    authority_fen: whole(0, MAX_AMOUNT_FEN)  # type: ignore[valid-type]


class ApplicantIn(_NewUser):
    """An applicant is a person, named by their resident ID."""

    role: Literal[Role.APPLICANT]
    resident_id: ResidentId


UserIn = Annotated[StaffIn | BranchStaffIn | ApplicantIn, Field(discriminator="role")]


class RefreshIn(Strict):
    refresh_token: Annotated[StrictStr, Field(min_length=1, max_length=200)]


class DelegateIn(Strict):
    username: Username


class _Keyed(Strict):
    """A movement of money: the caller's idempotency key and an optional value date."""

    idempotency_key: Annotated[
        StrictStr, Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=IDEMPOTENCY_KEY_PATTERN,
                   description="yours, unique per line; repeating a request with it returns the first result"),
    ]
    on_date: IsoDate | None = Field(default=None, description="value date; default: the business date; never after it")


class MovementIn(_Keyed):
    """A draw or a repayment."""

    amount_fen: Fen  # type: ignore[valid-type]


class PrepayIn(_Keyed):
    """A prepayment of a scheduled drawing's principal not yet due."""

    principal_fen: Fen  # type: ignore[valid-type]


class ClassifyIn(Strict):
    risk_class: Literal["normal", "special_mention", "substandard", "doubtful", "loss"] = Field(
        description="正常, 关注, 次级, 可疑, 损失; never better than the rules classify the drawing")
    note: Annotated[StrictStr, Field(min_length=1, max_length=500, description="the reason, kept in the classification history")]


class ReduceIn(Strict):
    limit_fen: whole(0, MAX_AMOUNT_FEN) = Field(description="the new, lower limit; never below what is drawn")  # type: ignore[valid-type]


class EodIn(Strict):
    business_date: IsoDate


DrawingIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="drawing (借据) number")]
DrawingIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="one drawing of the line; default: all")]
StatementFrom = Annotated[IsoDate, Query(alias="from", description="first day of the period, YYYY-MM-DD")]
StatementTo = Annotated[IsoDate, Query(alias="to", description="last day of the period, YYYY-MM-DD")]
JournalAfterId = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="the next_after_id of the previous page")]
JournalLimit = Annotated[int, Query(ge=1, le=MAX_JOURNAL_PAGE, description="entries per page")]
PageAfterId = Annotated[int, Query(ge=0, le=2**62, description="the next_after_id (or seq) of the previous page")]
UserPageLimit = Annotated[int, Query(ge=1, le=MAX_USER_PAGE, description="users per page")]
AuditPageLimit = Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE, description="records per page")]
ReferralLimit = Annotated[int, Query(ge=1, le=MAX_REFERRAL_PAGE, description="referrals per page")]
ReferralOffset = Annotated[int, Query(ge=0, le=MAX_REFERRAL_OFFSET, description="how many to skip (the next_offset of the previous page)")]
_branch_text = _text(MAX_BRANCH_LENGTH)
BranchQuery = Annotated[str | None, Query(min_length=1, max_length=MAX_BRANCH_LENGTH, json_schema_extra={"pattern": PLAIN_TEXT_PATTERN},
                                          description="the sub-branch (officers and approvers: only their own; default: theirs, or every one for an admin)"),
                        AfterValidator(lambda v: None if v is None else _branch_text(v))]


AlertIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="early-warning alert number")]
AlertStatusQuery = Annotated[Literal["open", "raised", "acknowledged", "proposed", "approved", "rejected", "done", "dismissed"],
                             Query(description="open: not yet done or dismissed")]
AlertLimit = Annotated[int, Query(ge=1, le=200, description="alerts per page")]


class AlertNoteIn(Strict):
    note: Opinion | None = Field(None, description="kept in the alert's life")


class AlertReasonIn(Strict):
    note: Opinion = Field(description="why: kept in the alert's life")


class AlertProposeIn(Strict):
    action: Literal["review", "freeze", "reduce_limit"] | None = Field(None, description="default: the action the rule proposes")
    limit_fen: whole(0, MAX_AMOUNT_FEN) | None = Field(  # type: ignore[valid-type]
        None, description="reduce_limit only: the lower limit proposed (default: the rule's share of the limit, never below what is drawn)")
    note: Opinion | None = Field(None, description="kept in the alert's life")


class ErrorBody(BaseModel):
    code: str
    field: str | None
    message: str
    allowed: str | None
    rule: str | None = Field(default=None, description="for refusals (403): the rule that refused")
    request_id: str | None = Field(default=None, description="the request's id, also in the logs and the audit trail")
    incident: str | None = Field(default=None, description="for server errors: quote it to support")


class ErrorOut(BaseModel):
    error: ErrorBody
