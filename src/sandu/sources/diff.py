"""What changed between two profile snapshots of one enterprise, feature by feature.

Pure: two `ProfileSnapshot`s in, a list of `Change`s out, in a fixed order (features by
name, then the data-quality flags, then collateral by asset id). A number that changed
carries its difference and, when the old value is not zero, its relative change; a
value that appeared or disappeared says so. This is what `sandu sources refresh` prints
and what early warning reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sandu.domain.money import format_cn
from sandu.sources.profile import Collateral, ProfileSnapshot

MAX_CHANGES = 1_000  # far above what two snapshots can differ by (features + flags + assets)


@dataclass(frozen=True)
class Change:
    """One difference. `kind`: "changed", "added" (absent before), "removed" (absent now)."""

    what: str  # "feature" | "flag" | "collateral"
    name: str
    kind: str
    before: Any
    after: Any
    delta: float | int | None = None  # after − before, for numbers
    relative: float | None = None  # delta / |before|, when before ≠ 0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def text(self) -> str:
        """One readable line: `revenue_fen: 2.00亿 → 1.80亿 (−2,000.00万, −10.0%)`."""
        if self.what == "flag":
            return f"flag {self.name}: {'raised' if self.kind == 'added' else 'cleared'}"
        show_b, show_a = _show(self.name, self.before), _show(self.name, self.after)
        if self.kind == "added":
            return f"{self.what} {self.name}: new, {show_a}"
        if self.kind == "removed":
            return f"{self.what} {self.name}: gone (was {show_b})"
        tail = ""
        if self.delta is not None:
            d = format_cn(self.delta) if _is_fen(self.name) and isinstance(self.delta, int) else f"{self.delta:+.6g}"
            if _is_fen(self.name) and isinstance(self.delta, int) and self.delta > 0:
                d = "+" + d
            tail = f" ({d}" + (f", {self.relative:+.1%}" if self.relative is not None else "") + ")"
        return f"{self.what} {self.name}: {show_b} → {show_a}{tail}"


def _is_fen(name: str) -> bool:
    return "fen" in name.split("_") or name.endswith("_fen")


def _show(name: str, value: Any) -> str:
    if _is_fen(name) and isinstance(value, int) and not isinstance(value, bool):
        return format_cn(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(k, v)}" for k, v in sorted(value.items()))
    return repr(value) if isinstance(value, str) else str(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _compare(what: str, name: str, before: Any, after: Any) -> Change | None:
    if before == after and type(before) is type(after):
        return None
    if before is None:
        return Change(what, name, "added", None, after)
    if after is None:
        return Change(what, name, "removed", before, None)
    delta = relative = None
    if _is_number(before) and _is_number(after):
        delta = after - before
        relative = None if before == 0 else round(delta / abs(before), 6)
        if isinstance(delta, float):
            delta = round(delta, 9)
    return Change(what, name, "changed", before, after, delta, relative)


def _assets(collateral: tuple[Collateral, ...]) -> dict[str, dict[str, Any]]:
    return {c.id or f"#{i}": {"kind": c.kind, "appraised_value_fen": c.appraised_value_fen, "secured_debt_fen": c.secured_debt_fen}
            for i, c in enumerate(collateral)}


def diff_profiles(before: ProfileSnapshot, after: ProfileSnapshot) -> list[Change]:
    """The differences from `before` to `after` (two snapshots of the same enterprise)."""
    if before.uscc != after.uscc:
        raise ValueError(f"the snapshots are of two enterprises ({before.uscc} and {after.uscc}); a diff compares one enterprise over time")
    changes: list[Change] = []
    for name in sorted(set(before.features) | set(after.features)):
        b, a = before.features.get(name), after.features.get(name)
        if isinstance(b, list) or isinstance(a, list):  # certifications: what was gained, what was lost
            b_set, a_set = set(b or ()), set(a or ())
            changes += [Change("feature", f"{name}[{v}]", "added", None, v) for v in sorted(a_set - b_set)]
            changes += [Change("feature", f"{name}[{v}]", "removed", v, None) for v in sorted(b_set - a_set)]
        elif (c := _compare("feature", name, b, a)) is not None:
            changes.append(c)
    b_flags, a_flags = set(before.quality_flags), set(after.quality_flags)
    changes += [Change("flag", f, "added", None, True) for f in sorted(a_flags - b_flags)]
    changes += [Change("flag", f, "removed", True, None) for f in sorted(b_flags - a_flags)]
    b_assets, a_assets = _assets(before.collateral), _assets(after.collateral)
    for asset in sorted(set(b_assets) | set(a_assets)):
        b, a = b_assets.get(asset), a_assets.get(asset)
        if b is not None and a is not None:
            for key in ("kind", "appraised_value_fen", "secured_debt_fen"):
                if (c := _compare("collateral", f"{asset}.{key}", b[key], a[key])) is not None:
                    changes.append(c)
        elif (c := _compare("collateral", asset, b, a)) is not None:
            changes.append(c)
    assert len(changes) <= MAX_CHANGES, "two snapshots differ by more than features, flags and assets allow"
    return changes
