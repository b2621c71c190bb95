"""The shape of sandu's own identifiers (decision and consent ids are UUIDs), checked
before a value is used to look anything up — a malformed key finds nothing and never
reaches the database."""

from __future__ import annotations

import re

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = re.compile(UUID_PATTERN)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None
