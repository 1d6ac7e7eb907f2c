"""The declaration check (``tiling_problems``) at the rank counts of a large
machine, and against a brute-force raster on small random decompositions.

Every rank runs the check at each ``declare`` on all P ranks' boxes, so a
check that is quadratic in P (51 s per field at 10,000 ranks, as the
pairwise test cost) stalls a large run before its first step.  These tests
check 10,000 and 100,000 synthetic rank declarations in pure Python within
a time budget about a hundred times the measured cost, with the overlap and
gap errors still found and named; and, on small grids, that the check says
exactly what a raster of the coverage says: nothing when every point is
covered once, else the first point in C order that is not, with the ranks
that overlap there (sizes and regions right) or the gap.
"""
import itertools
import random
import time

import numpy as np
import pytest

from insitu.decomposition import (block_sizes, cartesian_box, nested_boxes, process_grid,
                                  tiling_problems)

#: Seconds allowed for one check of P boxes.  Measured (2-core AMD EPYC,
#: loaded): 10,000 boxes 8 ms, 100,000 boxes 80 ms.  The pairwise check
#: took 51 s at 10,000.
BUDGET = {10_000: 2.0, 100_000: 10.0}


def _grid_boxes(p: int):
    """The boxes of :func:`cartesian_box` on a balanced grid of ``p`` ranks
    (uneven blocks), built from the block sizes once: ``cartesian_box``
    itself recomputes them for each rank, O(P^1.5) at 100,000."""
    grid = process_grid(p, 2)
    shape = (7 * grid[0] + 3, 5 * grid[1] + 2)
    sizes = [block_sizes(n, g) for n, g in zip(shape, grid)]
    starts = [np.cumsum([0] + s[:-1]).tolist() for s in sizes]
    boxes = [((starts[0][i], starts[1][j]), (sizes[0][i], sizes[1][j]))
             for i in range(grid[0]) for j in range(grid[1])]
    assert boxes[-1] == cartesian_box(shape, grid, (grid[0] - 1, grid[1] - 1))
    return shape, boxes


def _timed(shape, boxes):
    t0 = time.perf_counter()
    problems = tiling_problems(shape, boxes)
    return problems, time.perf_counter() - t0


def test_ten_thousand_declarations_are_checked_in_a_fraction_of_a_second():
    shape, boxes = _grid_boxes(10_000)
    problems, seconds = _timed(shape, boxes)
    assert problems == []
    assert seconds < BUDGET[10_000], f"{seconds:.2f} s for 10,000 boxes"


@pytest.mark.parametrize("p", [10_000, 100_000])
def test_large_decompositions_pass_and_their_errors_are_found(p):
    shape, boxes = _grid_boxes(p)
    problems, seconds = _timed(shape, boxes)
    assert problems == [] and seconds < BUDGET[p], seconds
    # as the session builds them: numpy integers from the gathered table
    table = np.array(boxes)
    as_table = [(tuple(table[r, 0]), tuple(table[r, 1])) for r in range(p)]
    assert tiling_problems(shape, as_table) == []
    # or the table itself, (P, 2, ndim), with the same answers
    assert tiling_problems(shape, table) == []
    bad = table.copy()
    bad[7, 1, 0] += 1
    assert tiling_problems(shape, bad) == tiling_problems(
        shape, [(tuple(b[0]), tuple(b[1])) for b in bad])
    assert "overlap" in tiling_problems(shape, bad)[0]

    # rank r grows by one row into its neighbour below
    r = p // 2 + 17
    (o0, o1), (s0, s1) = boxes[r]
    below = next(i for i, ((a, b), _) in enumerate(boxes) if a == o0 + s0 and b == o1)
    grown = list(boxes)
    grown[r] = ((o0, o1), (s0 + 1, s1))
    problems, seconds = _timed(shape, grown)
    assert seconds < BUDGET[p]
    assert problems == [f"ranks {r} and {below} overlap in {s1} points, "
                        f"[{o0 + s0}, {o0 + s0 + 1}) x [{o1}, {o1 + s1})"]

    # rank r shrinks by one column: the first point it leaves is named
    shrunk = list(boxes)
    shrunk[r] = ((o0, o1), (s0, s1 - 1))
    problems, seconds = _timed(shape, shrunk)
    assert seconds < BUDGET[p]
    total = shape[0] * shape[1]
    assert problems == [f"the ranks cover {total - s0} of {total} global points "
                        f"(a gap: no rank covers the point ({o0}, {o1 + s1 - 1}))"]

    # two ranks declare the same box (a copy-paste offset): a gap and an overlap
    dup = list(boxes)
    dup[r + 1] = dup[r]
    problems, _ = _timed(shape, dup)
    assert boxes[r][0] < boxes[r + 1][0]  # so the overlap comes first in C order
    assert problems == [f"ranks {r} and {r + 1} overlap in {s0 * s1} points, "
                        f"[{o0}, {o0 + s0}) x [{o1}, {o1 + s1})"]

    # a box outside the grid is named before anything else
    out = list(boxes)
    out[p - 1] = ((shape[0] - 1, 0), (2, 1))
    problems, _ = _timed(shape, out)
    assert problems == [f"rank {p - 1}: dimension 0 covers [{shape[0] - 1}, {shape[0] + 1}) "
                        f"outside the global range [0, {shape[0]})"]


def test_every_rank_declaring_the_whole_grid_is_one_short_message():
    """The usual mistake (each rank passes the global shape as its own)
    overlaps in P (P - 1) / 2 pairs: the message lists a few, and says how
    many ranks cover the first point, without finding them all."""
    p = 100_000
    problems, seconds = _timed((90, 180), [((0, 0), (90, 180))] * p)
    assert seconds < BUDGET[p]
    assert problems[0] == "ranks 0 and 1 overlap in 16200 points, [0, 90) x [0, 180)"
    assert len(problems) == 11
    assert problems[-1] == f"{p} ranks cover the point (0, 0): 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ..."


def test_three_dimensional_nested_decomposition_of_100_000_ranks():
    shape = (30, 400, 500)
    boxes = nested_boxes(shape, 100_000)
    problems, seconds = _timed(shape, boxes)
    assert problems == [] and seconds < BUDGET[100_000]
    moved = list(boxes)
    (a, b, c), (x, y, z) = moved[4321]
    moved[4321] = ((a, b, c + 1), (x, y, z))  # slid along the last dim by one
    problems, _ = _timed(shape, moved)
    assert c + z < shape[2]  # still inside: the point it leaves comes first
    assert problems == ["the ranks cover 6000000 of 6000000 global points (a gap: no rank "
                        f"covers the point ({a}, {b}, {c}), and some overlap elsewhere)"]


# --- exactness on small grids, against a raster of the coverage ----------

def _raster(shape, boxes):
    cover = np.zeros(shape, dtype=np.int64)
    for off, shp in boxes:
        cover[tuple(slice(o, o + s) for o, s in zip(off, shp))] += 1
    return cover


def _random_decomposition(rng: random.Random):
    ndim = rng.choice([1, 2, 2, 3])
    shape = tuple(rng.randint(1, 7) for _ in range(ndim))
    total = int(np.prod(shape))
    p = rng.randint(1, min(total, 9))
    if rng.random() < 0.5:
        boxes = nested_boxes(shape, p)
    else:
        grid = [1] * ndim
        for _ in range(rng.randint(0, 3)):
            d = rng.randrange(ndim)
            if grid[d] < shape[d]:
                grid[d] += 1
        boxes = [cartesian_box(shape, grid, c) for c in itertools.product(*map(range, grid))]
    boxes = [(list(o), list(s)) for o, s in boxes]
    for _ in range(rng.choice([0, 1, 1, 2, 3])):  # perturb, staying inside the grid
        what = rng.choice(["grow", "shrink", "shift", "drop", "copy", "empty", "whole"])
        r = rng.randrange(len(boxes))
        o, s = boxes[r]
        d = rng.randrange(ndim)
        if what == "grow" and o[d] + s[d] < shape[d]:
            s[d] += 1
        elif what == "shrink" and s[d] > 0:
            s[d] -= 1
        elif what == "shift" and o[d] + s[d] < shape[d]:
            o[d] += 1
        elif what == "drop" and len(boxes) > 1:
            del boxes[r]
        elif what == "copy":
            boxes.append((list(o), list(s)))
        elif what == "empty":
            boxes.insert(r, ([rng.randint(0, n) for n in shape], [0] * ndim))
        elif what == "whole":
            boxes[r] = ([0] * ndim, list(shape))
    return shape, [(tuple(o), tuple(s)) for o, s in boxes]


def _overlap(a, b):
    lo = [max(x, y) for x, y in zip(a[0], b[0])]
    hi = [min(x + s, y + t) for x, s, y, t in zip(a[0], a[1], b[0], b[1])]
    return int(np.prod([max(0, h - l) for l, h in zip(lo, hi)])), lo, hi


@pytest.mark.parametrize("seed", range(400))
def test_small_decompositions_agree_with_a_raster(seed):
    rng = random.Random(seed)
    shape, boxes = _random_decomposition(rng)
    cover = _raster(shape, boxes)
    problems = tiling_problems(shape, boxes)
    wrong = np.argwhere(cover != 1)  # C order
    if len(wrong) == 0:
        assert problems == [], (shape, boxes)
        return
    first = tuple(int(v) for v in wrong[0])
    assert problems, (shape, boxes)
    if cover[first] == 0:
        covered = sum(int(np.prod(s)) for _, s in boxes)
        total = int(np.prod(shape))
        assert problems == [f"the ranks cover {covered} of {total} global points (a gap: no "
                            f"rank covers the point {first}"
                            f"{', and some overlap elsewhere' if covered >= total else ''})"]
        return
    covering = [r for r, (o, s) in enumerate(boxes)
                if all(o[d] <= first[d] < o[d] + s[d] for d in range(len(shape)))]
    assert len(covering) == cover[first] >= 2
    # every pair of ranks at the point (and their other overlaps) named, with
    # its size and region
    expected = set()
    for a in covering[:4]:
        for b in range(len(boxes)):
            if b != a and _overlap(boxes[a], boxes[b])[0]:
                expected.add((min(a, b), max(a, b)))
    lines = []
    for a, b in sorted(expected)[:10]:
        n, lo, hi = _overlap(boxes[a], boxes[b])
        region = " x ".join(f"[{l}, {h})" for l, h in zip(lo, hi))
        lines.append(f"ranks {a} and {b} overlap in {n} points, {region}")
    if len(covering) > 2 or len(expected) > 10:
        shown = ", ".join(map(str, covering[:10])) + (", ..." if len(covering) > 10 else "")
        lines.append(f"{len(covering)} ranks cover the point {first}: {shown}")
    assert problems == lines, (shape, boxes)


def test_the_random_cases_cover_every_outcome():
    """The seeds above do reach exact tilings, gaps, overlaps, 3-D grids
    and empty boxes, so the raster comparison tests each path."""
    seen = set()
    for seed in range(400):
        shape, boxes = _random_decomposition(random.Random(seed))
        cover = _raster(shape, boxes)
        wrong = np.argwhere(cover != 1)
        seen.add("exact" if len(wrong) == 0 else
                 "gap" if cover[tuple(wrong[0])] == 0 else "overlap")
        seen.add(f"{len(shape)}-d")
        if any(0 in s for _, s in boxes):
            seen.add("empty box")
    assert seen >= {"exact", "gap", "overlap", "1-d", "2-d", "3-d", "empty box"}, seen


def test_block_sizes_used_above_are_uneven():
    assert len(set(block_sizes(7 * 100 + 3, 100))) == 2
