"""Domain decomposition maths as pure functions.

Nothing here touches MPI, so all of it is tested serially.  Both the Python
stand-in models (to build their slabs) and the session (to check what a model
declared) use these functions.

Conventions: a *box* is ``(offset, shape)`` of a rank's interior in the
global grid, both tuples of ints, 0-based, in the order the model indexes its
array.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Box = tuple[tuple[int, ...], tuple[int, ...]]


def block_sizes(n: int, parts: int) -> list[int]:
    """Split ``n`` points into ``parts`` contiguous blocks as evenly as possible.

    The first ``n % parts`` blocks get one extra point, the usual block
    distribution.  Blocks may be empty only if ``n < parts``, which is refused
    because an empty slab is almost always a configuration mistake.
    """
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    if n < parts:
        raise ValueError(f"cannot split {n} points into {parts} non-empty blocks")
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def block_range(n: int, parts: int, index: int) -> tuple[int, int]:
    """``(start, size)`` of block ``index`` of :func:`block_sizes` ``(n, parts)``."""
    sizes = block_sizes(n, parts)
    if not 0 <= index < parts:
        raise ValueError(f"block index {index} outside 0..{parts - 1}")
    return sum(sizes[:index]), sizes[index]


def process_grid(nprocs: int, ndim: int) -> tuple[int, ...]:
    """A balanced Cartesian process grid, like ``MPI_Dims_create``.

    Factors ``nprocs`` into ``ndim`` factors as close to each other as
    possible, largest first.  Kept pure so the stand-ins and the tests agree
    on the layout without MPI.
    """
    if nprocs < 1 or ndim < 1:
        raise ValueError("nprocs and ndim must be positive")
    dims = [1] * ndim
    remaining = nprocs
    factors = []
    f = 2
    while f * f <= remaining:
        while remaining % f == 0:
            factors.append(f)
            remaining //= f
        f += 1
    if remaining > 1:
        factors.append(remaining)
    for f in sorted(factors, reverse=True):
        dims[dims.index(min(dims))] *= f
    return tuple(sorted(dims, reverse=True))


def cartesian_box(global_shape: Sequence[int], grid: Sequence[int],
                  coords: Sequence[int]) -> Box:
    """The interior box of the rank at ``coords`` in a ``grid`` of ranks."""
    if not (len(global_shape) == len(grid) == len(coords)):
        raise ValueError("global_shape, grid and coords need the same length")
    offset, shape = [], []
    for n, p, c in zip(global_shape, grid, coords):
        start, size = block_range(int(n), int(p), int(c))
        offset.append(start)
        shape.append(size)
    return tuple(offset), tuple(shape)


def tiling_problems(global_shape: Sequence[int], boxes: Sequence[Box]) -> list[str]:
    """Check that rank boxes tile the global grid exactly.

    ``boxes`` is a sequence of ``(offset, shape)`` pairs, or an int array of
    shape ``(P, 2, ndim)`` holding the same (the cheaper form at large P: a
    gathered table's columns need no per-rank tuples).

    Returns a list of human-readable problems (empty when the tiling is
    right): a box of the wrong rank or out of range (every such box named),
    else the first grid point, in C order, that no box or more than one box
    covers, with the ranks that overlap there (and where) or the gap.

    Every rank runs this at each ``declare`` on every rank's box, so it must
    stay cheap at 10,000 ranks and more: it costs O(P log P) for P boxes (a
    sort of the boxes' corners), where the pairwise test it replaces cost
    O(P^2), 51 s per field at 10,000 ranks (docs/scaling.md).  The test is
    exact, by inclusion-exclusion: the indicator of a box ``[a, b)`` is the
    signed sum of the orthants at its 2**d corners (+ at ``a``, - at each
    corner with an odd number of ``b`` coordinates).  The boxes tile the
    grid exactly, every point covered once, iff their corners' signed
    weights, summed per point, equal the grid's own corners' weights, since
    orthants at distinct points are linearly independent.  Where they
    differ, the first such point in lexicographic order has no other
    differing corner below it in every coordinate, so the coverage there is
    1 + the difference: that point is a gap (coverage 0) or an overlap
    (coverage > 1), found without comparing boxes pairwise.
    """
    gshape = tuple(int(n) for n in global_shape)
    ndim = len(gshape)
    problems: list[str] = []
    if isinstance(boxes, np.ndarray) and boxes.ndim == 3 and boxes.shape[1:] == (2, ndim):
        wrong_rank = []  # an array of (offset, shape) rows: no per-rank loop at all
    else:
        wrong_rank = [r for r, (off, shp) in enumerate(boxes)
                      if len(off) != ndim or len(shp) != ndim]
    if wrong_rank:
        return [f"rank {r}: box has rank {len(boxes[r][0])}"
                + (f" (shape of rank {len(boxes[r][1])})" if len(boxes[r][1]) != len(boxes[r][0])
                   else "") + f", global grid has rank {ndim}" for r in wrong_rank]
    nbox = len(boxes)
    arr = np.array(boxes, dtype=np.int64).reshape(nbox, 2, ndim)
    off, shp = arr[:, 0, :], arr[:, 1, :]
    end = off + shp
    g = np.array(gshape, dtype=np.int64)
    outside = (shp < 0) | (off < 0) | (end > g)
    for r, d in zip(*np.nonzero(outside)):  # row-major: by rank, then dimension
        problems.append(f"rank {r}: dimension {d} covers [{off[r, d]}, {end[r, d]}) "
                        f"outside the global range [0, {gshape[d]})")
    if problems:
        return problems
    point = _first_wrong_point(gshape, off, shp)
    if point is None:
        return []
    where = tuple(int(v) for v in point)
    inside = np.all((off <= point) & (point < end), axis=1)
    covering = np.flatnonzero(inside)
    if covering.size == 0:
        covered = int(np.prod(shp, axis=1, dtype=np.int64).sum())
        total = int(np.prod(gshape, dtype=np.int64))
        # all inside the grid, a gap and at least the grid's volume: an overlap too
        also = ", and some overlap elsewhere" if covered >= total else ""
        return [f"the ranks cover {covered} of {total} global points (a gap: no rank "
                f"covers the point {where}{also})"]
    pairs = [np.empty(0, dtype=np.int64)]  # each pair a < b as a * nbox + b
    for a in covering[:_OVERLAP_RANKS]:
        lo, hi = np.maximum(off, off[a]), np.minimum(end, end[a])
        size = np.prod(np.clip(hi - lo, 0, None), axis=1, dtype=np.int64)
        size[a] = 0
        b = np.flatnonzero(size)
        pairs.append(np.minimum(a, b) * nbox + np.maximum(a, b))
    ordered = np.sort(np.concatenate(pairs))  # by (a, b); np.unique hashes, slower
    ordered = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    for a, b in zip(*np.divmod(ordered[:_OVERLAP_PAIRS], nbox)):
        lo, hi = np.maximum(off[a], off[b]), np.minimum(end[a], end[b])
        region = "".join(f"{' x ' if d else ', '}[{lo[d]}, {hi[d]})" for d in range(ndim))
        problems.append(f"ranks {a} and {b} overlap in {int(np.prod(hi - lo, dtype=np.int64))} "
                        f"points{region}")
    if len(covering) > 2 or len(ordered) > _OVERLAP_PAIRS:
        shown = ", ".join(str(r) for r in covering[:10]) + (", ..." if len(covering) > 10 else "")
        problems.append(f"{len(covering)} ranks cover the point {where}: {shown}")
    return problems


#: How many of the ranks covering the first doubly covered point have their
#: overlaps listed, and how many overlapping pairs are listed at most: a
#: decomposition where every rank declared the whole grid overlaps in
#: P (P - 1) / 2 pairs, which neither fit a message nor are worth finding.
_OVERLAP_RANKS = 4
_OVERLAP_PAIRS = 10


def _first_wrong_point(gshape: tuple[int, ...], off: np.ndarray, shp: np.ndarray):
    """The first point, in C order, that the boxes (all inside the grid)
    cover other than once, or None when they tile the grid exactly.

    See :func:`tiling_problems` for why the first point where the boxes'
    signed corner weights differ from the grid's is such a point.  A
    dimension that every box spans whole factors out of every indicator, so
    it is left out (its coordinate in the point is 0): a decomposition of
    (lev, lat, lon) that keeps lev whole costs 4 corners a box, not 8.
    Empty boxes are left out too: their corners cancel.
    """
    g = np.array(gshape, dtype=np.int64)
    if np.any(g == 0):  # an empty grid, so every box inside it is empty
        return None
    nonempty = np.all(shp > 0, axis=1)
    off, shp = off[nonempty], shp[nonempty]
    if len(off) == 0:
        return np.zeros(len(g), np.int64)
    dims = np.flatnonzero(~np.all((off == 0) & (shp == g), axis=0))
    k = len(dims)
    if k == 0:  # every box spans the whole grid: exact iff there is one
        return None if len(off) == 1 else np.zeros(len(g), np.int64)
    o, s, gk = off[:, dims], shp[:, dims], g[dims]
    corners, weights = [], []
    for bits in range(2 ** k):
        pick = np.array([(bits >> i) & 1 for i in range(k)], dtype=np.int64)
        sign = -1 if bin(bits).count("1") % 2 else 1
        corners.append(o + pick * s)
        weights.append(np.full(len(o), sign, dtype=np.int64))
        corners.append((pick * gk)[None, :])
        weights.append(np.array([-sign], dtype=np.int64))
    pts = np.concatenate(corners)
    w = np.concatenate(weights)
    # one int64 key a point, in the points' lexicographic order, when the
    # grid's corner coordinates (0..n inclusive) fit; else sort the columns
    radix = [int(n) + 1 for n in gk]
    if math.prod(radix) < 2 ** 62:
        strides = np.array([math.prod(radix[i + 1:]) for i in range(k)], dtype=np.int64)
        key = pts @ strides
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
    else:
        order = np.lexsort(pts.T[::-1])
        sp = pts[order]
        starts = np.flatnonzero(np.r_[True, np.any(sp[1:] != sp[:-1], axis=1)])
    sums = np.add.reduceat(w[order], starts)
    wrong = np.flatnonzero(sums)
    if wrong.size == 0:
        return None
    point = np.zeros(len(g), dtype=np.int64)
    point[dims] = pts[order[starts[wrong[0]]]]
    return point


def fitted_grid(global_shape: Sequence[int], nprocs: int) -> tuple[int, ...] | None:
    """The Cartesian process grid that fits ``global_shape`` best, or None.

    For a host that chooses its own decomposition (``insitu.replay`` reads
    archived fields, whose shapes need not suit :func:`process_grid`'s
    balanced factors): every grid with ``nprocs`` ranks whose factor along
    each dimension is at most that dimension's length is a candidate; the
    one whose largest slab is smallest wins (balance), and among equals the
    one that splits the slowest dimensions most (larger contiguous runs in
    C order, hence fewer, longer reads).  None when no grid fits, e.g. 3
    ranks on a 2 x 2 x 2 grid.
    """
    shape = tuple(int(n) for n in global_shape)
    best, best_key = None, None

    def factorisations(p: int, k: int):
        if k == 1:
            yield (p,)
            return
        for f in range(1, p + 1):
            if p % f == 0:
                for rest in factorisations(p // f, k - 1):
                    yield (f, *rest)

    for grid in factorisations(int(nprocs), len(shape)):
        if any(g > n for g, n in zip(grid, shape)):
            continue
        largest = int(np.prod([-(-n // g) for n, g in zip(shape, grid)], dtype=np.int64))
        key = (largest, tuple(-g for g in grid))
        if best_key is None or key < best_key:
            best, best_key = grid, key
    return best


def nested_boxes(global_shape: Sequence[int], nprocs: int) -> list[Box]:
    """Boxes for ``nprocs`` ranks when no Cartesian grid fits the shape.

    The slowest dimension is cut into ``min(nprocs, n)`` blocks, the ranks
    are shared among the blocks as evenly as possible, and each block is cut
    the same way along the next dimension for its own ranks.  Every rank
    gets a non-empty box and the boxes tile the grid.  Their projections
    onto the leading dimensions (``(d0,)``, ``(d0, d1)``, ...) tile too, so
    reductions that keep leading dimensions (a zonal mean of
    ``(plev, lat, lon)``) still form groups; keeping other dimensions may
    be refused, with a message, by the reduction groups.
    """
    shape = tuple(int(n) for n in global_shape)
    total = int(np.prod(shape, dtype=np.int64))
    if nprocs < 1 or nprocs > total:
        raise ValueError(f"cannot split a grid of {total} points among {nprocs} ranks")

    def split(offset, sub, p, d):
        if p == 1:
            return [(tuple(offset), tuple(sub))]
        k = min(p, sub[d])
        out, start = [], offset[d]
        for size, ranks in zip(block_sizes(sub[d], k), block_sizes(p, k)):
            o, s = list(offset), list(sub)
            o[d], s[d] = start, size
            out += split(o, s, ranks, d + 1)
            start += size
        return out

    return split([0] * len(shape), list(shape), int(nprocs), 0)


def fitted_boxes(global_shape: Sequence[int], nprocs: int) -> list[Box]:
    """Every rank's box: Cartesian (:func:`fitted_grid`) when a grid fits,
    else :func:`nested_boxes`.  Rank ``r`` of a grid sits at its row-major
    coordinates, as ``MPI_Cart_create`` numbers ranks."""
    grid = fitted_grid(global_shape, nprocs)
    if grid is None:
        return nested_boxes(global_shape, nprocs)
    return [cartesian_box(global_shape, grid, np.unravel_index(r, grid))
            for r in range(int(nprocs))]
