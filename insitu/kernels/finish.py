"""The scalar statistics of several ``stats`` analyses from the step's
combined record, in one compiled call.

Why: after the record's Allreduce every analysis turned its nine slots into
its statistics in Python (a ``tolist``, a dict, a square root, a ``zip``),
about 2 us each right after the model's step, where every Python call
costs several times its in-a-loop cost (issue 12); ten analyses paid it ten
times.  :func:`finish_stats` forms a whole run of analyses' statistics in
one call, into two flat arrays that become Python numbers in one
``tolist`` each (:class:`insitu.analyses.stats.StatsBatch`).

The arithmetic is the same as :meth:`insitu.analyses.stats.Stats._values`,
operation for operation and without fast-math, so every value has the same
bits: IEEE division and square root are correctly rounded in both, and a
count is a float holding an integer below 2**53, truncated to the same
int64.  ``tests/test_stats_batch.py`` compares the two on empty fields,
``n <= ddof``, weights summing to zero, NaN and Inf.
"""
from __future__ import annotations

import math

import numba

#: the float results of one analysis, in this order, at ``FLOATS * i``
FLOAT_STATS = ("sum", "mean", "min", "max", "var", "std")
#: the integer results of one analysis, in this order, at ``INTS * i``
INT_STATS = ("count", "nan_count", "inf_count")
FLOATS, INTS = len(FLOAT_STATS), len(INT_STATS)


@numba.njit(cache=True, nogil=True)
def finish_stats(record, rows, floats, ints):  # pragma: no cover - compiled
    """For each row ``(mom, wmom, ddof)`` of ``rows`` (``wmom`` < 0: no
    weights): the statistics of the moments at ``record[mom:mom + 9]``
    (count, mean, M2, mean's low part, sum, min, max, NaN and Inf counts),
    and of the weighted moments at ``record[wmom:wmom + 4]`` (weight sum,
    weighted mean, weighted M2), into ``floats`` (:data:`FLOAT_STATS`) and
    ``ints`` (:data:`INT_STATS`)."""
    nan = math.nan
    for i in range(rows.shape[0]):
        mom, wmom, ddof = rows[i, 0], rows[i, 1], rows[i, 2]
        n = record[mom]
        empty = n == 0
        f = FLOATS * i
        floats[f] = record[mom + 4]
        if empty:
            mean = nan
            floats[f + 2] = nan
            floats[f + 3] = nan
        else:
            mean = record[mom + 1]
            floats[f + 2] = record[mom + 5]
            floats[f + 3] = record[mom + 6]
        if n <= ddof:
            var = nan
        else:
            var = record[mom + 2] / (n - ddof)
        if wmom >= 0:
            wsum = record[wmom]
            if wsum <= 0:
                mean = nan
                var = nan
            else:
                mean = record[wmom + 1]
                var = record[wmom + 2] / wsum
        floats[f + 1] = mean
        floats[f + 4] = var
        floats[f + 5] = math.sqrt(var) if var >= 0 else nan
        k = INTS * i
        ints[k] = numba.int64(n)
        ints[k + 1] = numba.int64(record[mom + 7])
        ints[k + 2] = numba.int64(record[mom + 8])
