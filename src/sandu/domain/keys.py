"""The shape of sandu's own identifiers (decision and consent ids are UUIDs; lines and users
are numbered within a 32-bit column), checked
before a value is used to look anything up — a malformed key finds nothing and never
reaches the database."""

from __future__ import annotations

import re

MAX_ROW_ID = 2**31 - 1  # integer keys (lines, users, entries) are 32-bit INTEGER on PostgreSQL
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(UUID_PATTERN)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def is_row_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ROW_ID
