"""One pass over a field for every analysis that asks the same question of it.

Ten ``stats`` of ``T`` under ten names, or a ``stats`` of ``T`` beside a
``stats`` of ``T`` with other statistics, read the same slab with the same
kernel and get the same partials: the kernel is memory-bound (about
0.18 ms for a 1000x1000 float64 halo view here, issue 12), so each extra
pass costs the model as much as the first.  :class:`StepMemo` keeps the
kernels' results of the current step by a key that names everything the
result depends on, so the first analysis runs the kernel and the others
read its result.

What a key must hold: the kernel, the field, and everything that selects
or weighs its values (the region's local slices, the weights, a
threshold...), all fixed at bind; two analyses whose keys differ in any of
these never share a result (tests/test_step_memo.py).  The view itself is
not in the key: within one step a field name has one view (a derived
field's is evaluated once per step, :meth:`insitu.derived.DerivedField.view`),
and the session clears the memo at the start of every due step, before
any analysis runs, so nothing survives into the next step's data.

A shared result is the first analysis's output buffer: the others read
it (copying what they need into the step's record) and never write it;
the owner writes it again only at the next step, after the memo was
cleared.

:attr:`StepMemo.formed` holds, the same way, what an analysis formed from
the combined record at this step, for analyses whose slots hold the same
numbers (ten ``stats`` of T with the same options: the same kernel result
in their slots, combined alike, bit for bit): the first forms its
statistics, the others take them under their own names.  A due step's
Python costs several times more right after the model's step than in a
loop (the caches hold the model's data), about 6 us per ``stats`` result
there (issue 12).
"""
from __future__ import annotations

from typing import Hashable


class StepMemo:
    """The kernels' results of the current step, by key (see the module)."""

    __slots__ = ("_results", "formed", "hits", "misses", "_ids", "prepared")

    def __init__(self) -> None:
        self._results: dict = {}
        self._ids: dict = {}
        #: results formed from the combined record at this step, by key (the
        #: module docstring); cleared with the kernels' results
        self.formed: dict = {}
        #: kernel passes saved and run, since the session began (for tests
        #: and the overhead benchmark's report)
        self.hits = 0
        self.misses = 0
        #: kernel calls made ready for a view (``kernels.moments.prepare``)
        #: by ``(the analysis's key, id(view))``: ``(view, fn, args)``
        #: (:meth:`ready`).  Not cleared per step: a C model's views are
        #: kept by address (insitu.fields.FieldSlot), so the same view
        #: objects come back, two of them for swapped buffers.  Emptied
        #: when a Python model binds a new array (FieldSlot), so that a
        #: call made ready never keeps a dropped array alive.
        self.prepared: dict = {}

    def key(self, key: Hashable) -> int:
        """A small integer for ``key``, the same for equal keys (made at
        bind): the per-step lookups then hash an int, not a tuple of tuples
        (a tuple's hash is computed again at every lookup)."""
        return self._ids.setdefault(key, len(self._ids))

    def clear(self) -> None:
        """Forget every result: called by the session at each due step."""
        self._results.clear()
        self.formed.clear()

    def lookup(self, key: Hashable):
        """The result kept for ``key`` at this step, or None (then run the
        kernel and :meth:`keep` its result).  No closure per call: this is
        on the path of every analysis at every due step."""
        out = self._results.get(key)
        if out is not None:
            self.hits += 1
        return out

    def keep(self, key: Hashable, result):
        """Keep ``result`` for ``key`` until the next :meth:`clear`; returns it.
        A kernel that raised keeps nothing: the next analysis with the key
        runs it again, and fails or succeeds on its own account."""
        self.misses += 1
        self._results[key] = result
        return result

    def ready(self, key, view, fn, args) -> tuple:
        """Keep the call ``fn(*args)`` made ready for ``view`` under ``key``
        (see :attr:`prepared`); returns ``(view, fn, args)``.  At most
        :data:`PREPARED_MAX` are kept: past that (a C model exposing ever
        new addresses) all are forgotten and made again as needed."""
        if len(self.prepared) >= PREPARED_MAX:
            self.prepared.clear()
        entry = self.prepared[key] = (view, fn, args)
        return entry


#: how many prepared calls a session keeps (StepMemo.ready)
PREPARED_MAX = 256


def region_key(slices) -> tuple:
    """A hashable form of a region's local slices (None: the whole slab)."""
    if slices is None:
        return ()
    return tuple((s.start, s.stop, s.step) if isinstance(s, slice) else s for s in slices)


def frozen(value) -> Hashable:
    """A hashable copy of a config value (dicts and lists as sorted tuples),
    for keys holding, say, an analysis's ``weights:`` entry."""
    if isinstance(value, dict):
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value
