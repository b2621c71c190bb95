"""Who is acting: the authenticated person behind a request, or a system job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandu.domain.enums import Role


@dataclass(frozen=True)
class Actor:
    user_id: int | None  # None for a system job (the CLI's end of day, seeding)
    username: str
    role: Role
    branch: str | None = None
    authority_fen: int | None = None
    person_id_hmac: str | None = None  # applicants: the keyed hash of their resident ID
    person_id_masked: str | None = None
    auth_time: datetime | None = None  # when the password was last given

    @classmethod
    def system(cls, job: str, role: Role = Role.OPERATIONS) -> Actor:
        return cls(user_id=None, username=f"system:{job}", role=role)
