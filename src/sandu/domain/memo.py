"""Pure functions of a features dict, not evaluated again for features that differ only where they did not look.

`KeysReadMemo(fn)` calls `fn(features)` on a `_Reading` copy of the features, which notes every key `fn` asks for
(`features[k]`, `features.get(k)`, `k in features`) with what it found there — the value, or that the key was absent.
Called again with other features that hold the same thing under each of those keys, it answers the result it kept:
`fn` is pure and deterministic, so given the same answers to the same questions it takes the same path and asks
nothing else, and returns an equal result. A call in which `fn` looked at the features as a whole (iterated them,
counted or copied them) is not kept. Values are told apart by their `repr`, type included: 1, 1.0, True and
Decimal("1.0") are four different answers, and a NaN is never equal to anything (`repr` is used, not `==`, so it is).

Used by the counterfactual search (`sandu.origination.service.searching`): each lever changes a few features, and the
tech evaluation or the risk score that does not read them is not computed again (a handful of kept results per search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

R = TypeVar("R")
MAX_KEPT = 64  # results kept by one memo; past it, calls are evaluated and not kept
_ABSENT = "<absent>"  # what a key not in the features is noted as (no value's repr: reprs of str are quoted)


def _whole(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` of dict, noting that the features were looked at as a whole."""

    def looked_at_all(self: _Reading, *args: Any) -> Any:
        self.whole = True
        return method(self, *args)

    return looked_at_all


class _Reading(dict):  # type: ignore[type-arg]
    """A copy of a features dict that notes each key asked for, and whether the whole of it was looked at."""

    def __init__(self, features: dict[str, Any]):
        super().__init__(features)
        self.asked: dict[Any, str] = {}
        self.whole = False

    def _note(self, key: Any) -> None:
        if key not in self.asked:
            self.asked[key] = repr(dict.get(self, key)) if dict.__contains__(self, key) else _ABSENT

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return dict.__contains__(self, key)

    __iter__ = _whole(dict.__iter__)
    __len__ = _whole(dict.__len__)
    __eq__ = _whole(dict.__eq__)
    __ne__ = _whole(dict.__ne__)
    __reversed__ = _whole(dict.__reversed__)
    __repr__ = _whole(dict.__repr__)  # str() and format() too
    __or__ = _whole(dict.__or__)
    __ror__ = _whole(dict.__ror__)
    keys = _whole(dict.keys)
    values = _whole(dict.values)
    items = _whole(dict.items)
    copy = _whole(lambda self: dict(dict.items(self)))

    __hash__ = None  # type: ignore[assignment]

    def _refuse(self, *_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("a memoized function must not change the features it reads")

    __setitem__ = __delitem__ = pop = popitem = setdefault = update = clear = __ior__ = _refuse  # type: ignore[assignment]


def _answers(features: dict[str, Any], keys: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(repr(features[k]) if k in features else _ABSENT for k in keys)


class KeysReadMemo(Generic[R]):
    """`fn(features)`, kept by what `fn` read of them (see the module). At most `MAX_KEPT` results; not thread-safe
    (one per search)."""

    def __init__(self, fn: Callable[[dict[str, Any]], R]):
        self.fn = fn
        self.kept: list[tuple[tuple[Any, ...], tuple[str, ...], R]] = []  # (keys read, their answers, result)
        self.calls = self.evaluations = 0

    def __call__(self, features: dict[str, Any]) -> R:
        self.calls += 1
        for keys, answers, result in self.kept:
            if _answers(features, keys) == answers:
                return result
        reading = _Reading(features)
        result = self.fn(reading)
        self.evaluations += 1
        if not reading.whole and len(self.kept) < MAX_KEPT:
            keys = tuple(reading.asked)
            self.kept.append((keys, tuple(reading.asked[k] for k in keys), result))
        return result
