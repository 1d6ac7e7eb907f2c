"""Which steps have something due: the session's cadence.

A step is due when some enabled analysis with a local phase is due at it
(``step % every == 0``).  Windows have no cadence of their own (they follow
their source's results) and triggers run only on due steps, so the
``every`` of the enabled non-window analyses says it all.

Both routes skip a step that is not due before any MPI call, from this one
description: :meth:`insitu.session.Session.step` asks :meth:`Cadence.due`,
and libinsitu's C side gets the same numbers (:meth:`Cadence.c_table`) so
that ``insitu_step`` returns without entering Python at all.  Every rank
reads the same config and agrees on which analyses are disabled, so every
rank skips the same steps: such a step is not a collective any more, and
the handshake that catches ranks on different steps runs at due steps, at
declares and at finalize.
"""
from __future__ import annotations

from typing import Iterable, Optional

#: The most periods the C side holds (``INSITU_MAX_CADENCE`` in libinsitu.c).
#: A session with more distinct periods (after dropping multiples) enters
#: Python at every step, where the same test runs.
C_MAX = 64


def reduced(periods: Iterable[int]) -> tuple[int, ...]:
    """The distinct periods, without those that are multiples of another
    (their due steps are a subset), smallest first."""
    out: list[int] = []
    for p in sorted(set(int(p) for p in periods)):
        if p < 1:
            raise ValueError(f"a period must be a positive integer, got {p}")
        if not any(p % q == 0 for q in out):
            out.append(p)
    return tuple(out)


class Cadence:
    """The periods of a session's enabled analyses.

    ``Cadence(None)`` is not known yet (before the first step binds the
    analyses): every step is due, so it enters the session.
    """

    __slots__ = ("periods", "known")

    def __init__(self, periods: Optional[Iterable[int]]) -> None:
        self.known = periods is not None
        self.periods = reduced(periods) if periods is not None else ()

    @classmethod
    def of(cls, analyses, disabled) -> "Cadence":
        """The cadence of ``analyses`` minus those in ``disabled`` (indices).

        Only the base rule (``step % every == 0``) can be described by
        periods: an analysis kind with a ``due`` of its own, other than a
        follower's (window, climatology), makes the cadence unknown, and every step enters the
        session, which asks each analysis."""
        from .analyses.base import Analysis
        periods = []
        for a in analyses:
            if getattr(a, "follows_source", False) or a.index in disabled:
                continue
            if type(a).due is not Analysis.due:
                return cls(None)
            periods.append(a.every)
        return cls(periods)

    def due(self, step: int) -> bool:
        """True when something may be due at ``step`` (always, until known)."""
        if not self.known:
            return True
        for p in self.periods:
            if step % p == 0:
                return True
        return False

    def c_table(self) -> Optional[tuple[int, ...]]:
        """The periods for libinsitu's table, or None when C cannot hold them
        (not known yet, or more than :data:`C_MAX`): then every step enters
        Python."""
        if not self.known or len(self.periods) > C_MAX:
            return None
        return self.periods

    def __eq__(self, other) -> bool:
        return isinstance(other, Cadence) and (self.known, self.periods) == \
            (other.known, other.periods)

    def __hash__(self) -> int:
        return hash((self.known, self.periods))

    def __repr__(self) -> str:
        return f"Cadence({list(self.periods) if self.known else None})"
