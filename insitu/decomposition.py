"""Domain decomposition maths as pure functions.

Nothing here touches MPI, so all of it is tested serially.  Both the Python
stand-in models (to build their slabs) and the session (to check what a model
declared) use these functions.

Conventions: a *box* is ``(offset, shape)`` of a rank's interior in the
global grid, both tuples of ints, 0-based, in the order the model indexes its
array.
"""
from __future__ import annotations

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

    Returns a list of human-readable problems (empty when the tiling is
    right): a box out of range, two boxes that overlap, or points no box
    covers.  The test is exact and costs O(ranks^2) box intersections, which
    is nothing next to one step of a model.
    """
    problems = []
    gshape = tuple(int(n) for n in global_shape)
    ndim = len(gshape)
    for r, (off, shp) in enumerate(boxes):
        if len(off) != ndim or len(shp) != ndim:
            problems.append(f"rank {r}: box has rank {len(off)}, global grid has rank {ndim}")
            continue
        for d in range(ndim):
            if shp[d] < 0 or off[d] < 0 or off[d] + shp[d] > gshape[d]:
                problems.append(
                    f"rank {r}: dimension {d} covers [{off[d]}, {off[d] + shp[d]}) "
                    f"outside the global range [0, {gshape[d]})")
    if problems:
        return problems
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            inter = _intersection(boxes[a], boxes[b])
            if inter:
                problems.append(f"ranks {a} and {b} overlap in {inter} points")
    covered = sum(int(np.prod(shp, dtype=np.int64)) for _, shp in boxes)
    total = int(np.prod(gshape, dtype=np.int64))
    if not problems and covered != total:
        problems.append(f"the ranks cover {covered} of {total} global points (a gap)")
    return problems


def _intersection(a: Box, b: Box) -> int:
    n = 1
    for (oa, sa), (ob, sb) in zip(zip(*a), zip(*b)):
        lo, hi = max(oa, ob), min(oa + sa, ob + sb)
        if hi <= lo:
            return 0
        n *= hi - lo
    return n


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
