"""Double-entry journal for credit lines. Pure: dataclasses in, dataclasses out.

Conventions
-----------
* Amounts are integer fen. A posting's amount is signed: debit positive,
  credit negative. Every entry balances (its postings sum to 0), so the sum of
  all account balances over any set of entries is 0 (the trial balance).
* Accounts are colon-separated paths, e.g. ``loan:L-001:principal``: a
  lower-case root (``loan``, ``income``, ``clearing``, ...) followed by
  segments of letters, digits, ``_`` or ``-``.
* Every entry carries an idempotency key; a store must record an entry at most
  once per key. This module only builds and checks entries.

Accounts of a loan ``owner`` (a drawing: ``{line}-{drawing}``)
-------------------------------------------------------------
``loan:{owner}:principal``          principal receivable not overdue (asset)
``loan:{owner}:interest``           interest charged and due, not overdue
``loan:{owner}:penalty``            penalty interest receivable (罚息)
``loan:{owner}:compound``           compound interest receivable (复利)
``loan:{owner}:overdue_interest``   overdue interest receivable
``loan:{owner}:overdue_principal``  overdue principal receivable
``income:interest|penalty|compound`` income of each kind of interest
``clearing:disbursement``           money sent to the borrower
``clearing:repayment``              money received from the borrower
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeGuard

from sandu.domain.errors import InvalidInput, shorten, show

__all__ = [
    "CHARGE_KINDS",
    "DISBURSEMENT_ACCOUNT",
    "INCOME_ACCOUNTS",
    "INTEREST_INCOME_ACCOUNT",
    "LOAN_BUCKETS",
    "MAX_POSTINGS",
    "REPAYMENT_ACCOUNT",
    "JournalEntry",
    "Posting",
    "balances",
    "charge_entry",
    "draw_entry",
    "interest_posting_entry",
    "loan_account",
    "overdue_entry",
    "repayment_entry",
    "repayments_entry",
    "trial_balance_ok",
]

ACCOUNT_PATTERN = re.compile(r"[a-z_]+(:[A-Za-z0-9_\-]+)*")
LINE_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]+")
KIND_PATTERN = re.compile(r"[a-z_]+")
MAX_ACCOUNT_LENGTH = 120
MAX_KEY_LENGTH = 200
MAX_POSTINGS = 2001  # a batch entry of end of day: up to 1,000 loans, two postings each, and one total

# The kinds of interest charged to a loan; each is also the bucket it is receivable in.
CHARGE_KINDS: tuple[str, ...] = ("interest", "penalty", "compound")
INCOME_ACCOUNTS: dict[str, str] = {kind: f"income:{kind}" for kind in CHARGE_KINDS}
INTEREST_INCOME_ACCOUNT = INCOME_ACCOUNTS["interest"]
DISBURSEMENT_ACCOUNT = "clearing:disbursement"
REPAYMENT_ACCOUNT = "clearing:repayment"
# Receivable buckets of a credit line; each is the last segment of its account.
LOAN_BUCKETS: tuple[str, ...] = ("penalty", "compound", "overdue_interest", "overdue_principal", "interest", "principal")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_amount(value: object) -> int:
    if not _is_int(value) or value <= 0:
        raise InvalidInput("amount_fen", f"amount must be a positive int in fen, got {show(value)}", "int >= 1 fen")
    return value


@dataclass(frozen=True)
class Posting:
    """One line of an entry: debit if `amount_fen` > 0, credit if < 0."""

    account: str
    amount_fen: int

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not 0 < len(self.account) <= MAX_ACCOUNT_LENGTH \
                or not ACCOUNT_PATTERN.fullmatch(self.account):
            raise InvalidInput("account", f"malformed account {show(self.account)}",
                               f"[a-z_]+(:[A-Za-z0-9_-]+)*, at most {MAX_ACCOUNT_LENGTH} chars")
        if not _is_int(self.amount_fen) or self.amount_fen == 0:
            raise InvalidInput("amount_fen", f"posting amount must be a non-zero int, got {show(self.amount_fen)}",
                               "int != 0 (debit > 0, credit < 0)")


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of 2..`MAX_POSTINGS` postings recorded once under `idempotency_key`."""

    idempotency_key: str
    kind: str
    effective_date: date
    postings: tuple[Posting, ...]
    memo: str = ""

    def __post_init__(self) -> None:
        self._check_header()
        postings = self._check_postings()
        object.__setattr__(self, "postings", postings)
        total = sum(p.amount_fen for p in postings)
        if total != 0:
            raise InvalidInput("postings", f"entry does not balance: sum is {total} fen", "sum of postings = 0")

    def _check_header(self) -> None:
        key = self.idempotency_key
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise InvalidInput("idempotency_key", f"malformed idempotency key {show(key)}",
                               f"non-empty string of at most {MAX_KEY_LENGTH} chars")
        if not isinstance(self.kind, str) or not KIND_PATTERN.fullmatch(self.kind):
            raise InvalidInput("kind", f"malformed entry kind {show(self.kind)}", "[a-z_]+")
        if not isinstance(self.effective_date, date) or isinstance(self.effective_date, datetime):
            raise InvalidInput("effective_date", f"expected a date, got {show(self.effective_date)}", "datetime.date")
        if not isinstance(self.memo, str):
            raise InvalidInput("memo", f"memo must be a string, got {type(self.memo).__name__}")

    def _check_postings(self) -> tuple[Posting, ...]:
        if isinstance(self.postings, (str, bytes)) or not isinstance(self.postings, Iterable):
            raise InvalidInput("postings", "postings must be a sequence of Posting", "tuple[Posting, ...]")
        postings = tuple(self.postings)
        if not all(isinstance(p, Posting) for p in postings):
            raise InvalidInput("postings", "every posting must be a Posting", "tuple[Posting, ...]")
        if not 2 <= len(postings) <= MAX_POSTINGS:
            raise InvalidInput("postings", f"entry has {len(postings)} postings", f"2..{MAX_POSTINGS} postings")
        return postings


def balances(entries: Iterable[JournalEntry]) -> dict[str, int]:
    """Net balance per account (debit positive), over every account touched."""
    if not isinstance(entries, Iterable):
        raise InvalidInput("entries", f"expected JournalEntry records, got {type(entries).__name__}")
    totals: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, JournalEntry):
            raise InvalidInput("entries", f"expected JournalEntry, got {type(entry).__name__}")
        for posting in entry.postings:
            totals[posting.account] = totals.get(posting.account, 0) + posting.amount_fen
    return dict(sorted(totals.items()))


def trial_balance_ok(balances: Mapping[str, int]) -> bool:
    """True when all balances sum to 0, as they must for balanced entries."""
    return sum(balances.values()) == 0


# --------------------------------------------------------------------------
# standard entries of a credit line
# --------------------------------------------------------------------------


def loan_account(line_id: str, bucket: str) -> str:
    """The receivable account ``loan:{line_id}:{bucket}``."""
    if not isinstance(line_id, str) or not LINE_ID_PATTERN.fullmatch(line_id):
        raise InvalidInput("line_id", f"malformed credit line id {show(line_id)}", "[A-Za-z0-9_-]+")
    if bucket not in LOAN_BUCKETS:
        raise InvalidInput("bucket", f"unknown bucket {show(bucket)}", ", ".join(LOAN_BUCKETS))
    return f"loan:{line_id}:{bucket}"


def draw_entry(line_id: str, amount_fen: int, effective_date: date, idempotency_key: str) -> JournalEntry:
    """A drawing: Dr loan principal / Cr clearing:disbursement."""
    amount = _check_amount(amount_fen)
    return JournalEntry(
        idempotency_key=idempotency_key,
        kind="draw",
        effective_date=effective_date,
        postings=(
            Posting(loan_account(line_id, "principal"), amount),
            Posting(DISBURSEMENT_ACCOUNT, -amount),
        ),
    )


def interest_posting_entry(
    line_id: str, amount_fen: int, effective_date: date, idempotency_key: str
) -> JournalEntry:
    """Posting accrued interest: Dr loan interest / Cr income:interest.

    Zero interest is not posted: callers skip the entry when the rounded
    amount is 0.
    """
    amount = _check_amount(amount_fen)
    return JournalEntry(
        idempotency_key=idempotency_key,
        kind="interest",
        effective_date=effective_date,
        postings=(
            Posting(loan_account(line_id, "interest"), amount),
            Posting(INTEREST_INCOME_ACCOUNT, -amount),
        ),
    )


def repayment_entry(
    line_id: str, allocations: Mapping[str, int], effective_date: date, idempotency_key: str
) -> JournalEntry:
    """A repayment: Dr clearing:repayment (total) / Cr each bucket's receivable.

    `allocations` maps bucket name (one of `LOAN_BUCKETS`) to a positive fen
    amount, e.g. the result of `sandu.ledger.allocation.allocate`. Credits are
    listed in `LOAN_BUCKETS` order.
    """
    if not isinstance(allocations, Mapping) or not allocations:
        raise InvalidInput("allocations", "a repayment needs at least one bucket", ", ".join(LOAN_BUCKETS))
    unknown = sorted(str(b) for b in allocations if b not in LOAN_BUCKETS)
    if unknown:
        raise InvalidInput("allocations", f"unknown bucket(s) {shorten(', '.join(unknown))}", ", ".join(LOAN_BUCKETS))
    credits = [
        Posting(loan_account(line_id, bucket), -_check_amount(allocations[bucket]))
        for bucket in LOAN_BUCKETS
        if bucket in allocations
    ]
    total = -sum(p.amount_fen for p in credits)
    return JournalEntry(
        idempotency_key=idempotency_key,
        kind="repayment",
        effective_date=effective_date,
        postings=(Posting(REPAYMENT_ACCOUNT, total), *credits),
    )


def _check_owner_amounts(amounts: object, field: str) -> list[tuple[str, int]]:
    if not isinstance(amounts, Mapping) or not amounts:
        raise InvalidInput(field, "needs at least one loan", "a mapping of loan id to fen")
    return [(owner, _check_amount(amounts[owner])) for owner in amounts]


def charge_entry(kind: str, amounts: Mapping[str, int], effective_date: date, idempotency_key: str) -> JournalEntry:
    """Interest of `kind` (interest, penalty or compound) charged to one or more loans:
    Dr loan:{owner}:{kind} for each / Cr income:{kind} (the total). Zero amounts are not
    charged: callers leave them out."""
    if kind not in CHARGE_KINDS:
        raise InvalidInput("kind", f"unknown kind of interest {show(kind)}", ", ".join(CHARGE_KINDS))
    debits = [Posting(loan_account(owner, kind), amount) for owner, amount in _check_owner_amounts(amounts, "amounts")]
    total = sum(p.amount_fen for p in debits)
    return JournalEntry(idempotency_key=idempotency_key, kind=kind, effective_date=effective_date,
                        postings=(*debits, Posting(INCOME_ACCOUNTS[kind], -total)))


def overdue_entry(moves: Mapping[str, tuple[int, int]], effective_date: date, idempotency_key: str) -> JournalEntry:
    """Amounts that fell due and were not paid become overdue: for each loan,
    (principal, interest) moved from principal to overdue_principal and from interest
    to overdue_interest. A zero part is not moved; each loan moves something."""
    if not isinstance(moves, Mapping) or not moves:
        raise InvalidInput("moves", "needs at least one loan", "a mapping of loan id to (principal, interest) fen")
    postings: list[Posting] = []
    for owner, pair in moves.items():
        if not isinstance(pair, tuple) or len(pair) != 2 or not all(_is_int(x) and x >= 0 for x in pair) or sum(pair) == 0:
            raise InvalidInput("moves", f"loan {shorten(str(owner))} moves {show(pair)}", "(principal, interest) fen, each >= 0, not both 0")
        for (bucket, amount) in zip(("principal", "interest"), pair, strict=True):
            if amount:
                postings += [Posting(loan_account(owner, f"overdue_{bucket}"), amount), Posting(loan_account(owner, bucket), -amount)]
    return JournalEntry(idempotency_key=idempotency_key, kind="overdue", effective_date=effective_date, postings=tuple(postings))


def repayments_entry(
    allocations: Mapping[str, Mapping[str, int]], effective_date: date, idempotency_key: str
) -> JournalEntry:
    """One repayment across loans: Dr clearing:repayment (total) / Cr each loan's buckets,
    loans in the mapping's order, buckets in `LOAN_BUCKETS` order."""
    if not isinstance(allocations, Mapping) or not allocations:
        raise InvalidInput("allocations", "a repayment needs at least one loan", "a mapping of loan id to bucket amounts")
    credits: list[Posting] = []
    for owner, buckets in allocations.items():
        credits += repayment_entry(owner, buckets, effective_date, idempotency_key).postings[1:]
    total = -sum(p.amount_fen for p in credits)
    return JournalEntry(idempotency_key=idempotency_key, kind="repayment", effective_date=effective_date,
                        postings=(Posting(REPAYMENT_ACCOUNT, total), *credits))
