"""Decomposition maths, without MPI."""
import numpy as np
import pytest

from insitu.decomposition import (block_range, block_sizes, cartesian_box, process_grid,
                                  tiling_problems)


@pytest.mark.parametrize("n,p", [(10, 1), (10, 3), (7, 7), (100, 4), (13, 5)])
def test_block_sizes_cover_and_balance(n, p):
    sizes = block_sizes(n, p)
    assert sum(sizes) == n and len(sizes) == p
    assert max(sizes) - min(sizes) <= 1
    starts = [block_range(n, p, i)[0] for i in range(p)]
    assert starts == list(np.cumsum([0] + sizes[:-1]))


def test_block_sizes_refuses_empty_blocks():
    with pytest.raises(ValueError, match="non-empty"):
        block_sizes(3, 4)


@pytest.mark.parametrize("nprocs,ndim,expected", [(1, 2, (1, 1)), (2, 2, (2, 1)),
                                                  (3, 2, (3, 1)), (4, 2, (2, 2)),
                                                  (12, 2, (4, 3)), (8, 3, (2, 2, 2))])
def test_process_grid_matches_mpi_dims_create(nprocs, ndim, expected):
    assert process_grid(nprocs, ndim) == expected


@pytest.mark.parametrize("shape,grid", [((97, 130), (2, 2)), ((10, 11), (3, 1)), ((5, 7, 9), (2, 1, 3))])
def test_cartesian_boxes_tile_exactly(shape, grid):
    boxes = [cartesian_box(shape, grid, c) for c in np.ndindex(*grid)]
    assert tiling_problems(shape, boxes) == []


def test_tiling_detects_overlap_gap_and_range():
    good = [((0, 0), (5, 10)), ((5, 0), (5, 10))]
    assert tiling_problems((10, 10), good) == []
    overlap = [((0, 0), (6, 10)), ((5, 0), (5, 10))]
    assert any("overlap" in p for p in tiling_problems((10, 10), overlap))
    gap = [((0, 0), (4, 10)), ((5, 0), (5, 10))]
    assert any("gap" in p for p in tiling_problems((10, 10), gap))
    out = [((0, 0), (5, 10)), ((5, 0), (6, 10))]
    assert any("outside" in p for p in tiling_problems((10, 10), out))
