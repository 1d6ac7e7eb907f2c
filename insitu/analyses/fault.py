"""A fault-injection analysis: a fire drill for a deployment's failure path.

``{kind: fault, field: T, at_step: 50, ranks: last}`` raises
:class:`InjectedFault` in the local phase of step 50 on the chosen ranks, so
an operator (and the test suite) can see what ``on_error: abort`` or
``on_error: skip`` does on their own machine before a real failure does it.
It writes no variables.
"""
from __future__ import annotations

import random

from .. import schema as s
from .base import common_keys, Analysis, AnalysisError


class InjectedFault(RuntimeError):
    """Raised on purpose by a ``fault`` analysis."""


class Fault(Analysis):
    kind = "fault"
    schema = s.Record({
        **common_keys(),
        "at_step": s.Int(minimum=1, doc="the step whose local phase raises"),
        "ranks": s.Str(default="first", doc="first, last, all, random, or a rank number"),
        "seed": s.Int(default=0, doc="seed for ranks: random (same choice on every rank)"),
        "message": s.Str(default="injected fault"),
    })

    def bind(self, ctx):
        which = self.cfg["ranks"]
        size = self.size
        choices = {"first": {0}, "last": {size - 1}, "all": set(range(size)),
                   "random": {random.Random(self.cfg["seed"]).randrange(size)}}
        if which in choices:
            self.targets = choices[which]
        elif which.isdigit() and int(which) < size:
            self.targets = {int(which)}
        else:
            raise AnalysisError(f"{self.where}.ranks: expected first, last, all, random or a "
                                f"rank below {size}, got {which!r}")
        return []

    def local(self, views, record, step):
        if step == self.cfg["at_step"] and self.rank in self.targets:
            raise InjectedFault(f"{self.cfg['message']} (rank {self.rank}, step {step})")

    def results(self, record):
        return {}
