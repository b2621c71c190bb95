"""The demo's people: one user per staff role, an officer and an approver for each story
sub-branch, and the legal representative of each story enterprise as an applicant.

Passwords are random, made on first run and written to a file only its owner can read
(var/demo-users.txt); running again keeps the users and the file as they are."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sandu.domain.enums import Role
from sandu.domain.errors import NotFound
from sandu.domain.money import FEN_PER_WAN
from sandu.runtime import Runtime
from sandu.security import actions as security
from sandu.security.actor import Actor
from sandu.simulate.stories import STORY_ROWS

STORY_BRANCHES = ("龙湾", "乐清", "永嘉", "苍南")
OFFICER_AUTHORITY_FEN = 500 * FEN_PER_WAN  # an officer approves up to 500万 on their own
APPROVER_AUTHORITY_FEN = 20_000 * FEN_PER_WAN  # a sub-branch approver up to 2亿
BRANCH_LETTER = {"龙湾": "longwan", "乐清": "yueqing", "永嘉": "yongjia", "苍南": "cangnan"}


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: Role
    branch: str | None = None
    authority_fen: int | None = None
    resident_id: str | None = None
    note: str = ""


def story_applicant(story: str) -> str:
    return f"rep-{story.lower()}"


def officer_of(branch: str) -> str:
    return f"officer-{BRANCH_LETTER[branch]}"


def approver_of(branch: str) -> str:
    return f"approver-{BRANCH_LETTER[branch]}"


def demo_specs() -> list[UserSpec]:
    specs = [
        UserSpec("admin", Role.ADMIN, note="creates staff, disables users"),
        UserSpec("auditor", Role.AUDITOR, note="reads everything, writes nothing"),
        UserSpec("risk", Role.RISK, note="portfolio views"),
        UserSpec("ops", Role.OPERATIONS, note="end of day"),
    ]
    for branch in STORY_BRANCHES:
        specs.append(UserSpec(officer_of(branch), Role.OFFICER, branch, OFFICER_AUTHORITY_FEN, note=f"{branch}支行客户经理"))
        specs.append(UserSpec(approver_of(branch), Role.APPROVER, branch, APPROVER_AUTHORITY_FEN, note=f"{branch}支行审批人"))
    for row in STORY_ROWS:
        specs.append(UserSpec(story_applicant(row["story"]), Role.APPLICANT, resident_id=row["legal_rep_id"], note=f"{row['name']} 法定代表人"))
    return specs


def ensure_users(rt: Runtime, specs: list[UserSpec]) -> list[tuple[UserSpec, str]]:
    """Create the users that do not exist yet; returns (spec, password) for each one created."""
    created = []
    for spec in specs:
        try:
            security.actor_by_username(rt, spec.username)
            continue
        except NotFound:
            pass
        password = secrets.token_urlsafe(12)
        security.create_user(rt, None, username=spec.username, password=password, role=spec.role, branch=spec.branch,
                             authority_fen=spec.authority_fen, resident_id=spec.resident_id)
        created.append((spec, password))
    return created


def write_passwords(path: Path, created: list[tuple[UserSpec, str]]) -> None:
    """Append the new users' passwords to `path`, created readable by its owner only."""
    if not created:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for spec, password in created:
            f.write(f"{spec.username}\t{password}\t{spec.role}\t{spec.note}\n")
    os.chmod(path, 0o600)


def actor(rt: Runtime, username: str) -> Actor:
    """A demo user acting now (the story replay acts through the services as them)."""
    return security.actor_by_username(rt, username)
