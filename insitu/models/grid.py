"""A 2-D block-decomposed grid with one-cell halos, for the stand-in models.

Arrays are C-ordered ``(y, x)`` with a halo of one cell on every side.  The
decomposition comes from :mod:`insitu.decomposition`'s pure functions, so
uneven splits (sizes that do not divide by the process grid) are exercised.
"""
from __future__ import annotations

import numpy as np
from mpi4py import MPI

from ..decomposition import cartesian_box, process_grid


class Grid2D:
    def __init__(self, comm, global_shape: tuple[int, int], periodic: bool) -> None:
        self.global_shape = tuple(int(n) for n in global_shape)
        self.dims = process_grid(comm.Get_size(), 2)
        self.cart = comm.Create_cart(self.dims, periods=[periodic, periodic], reorder=False)
        self.coords = tuple(self.cart.Get_coords(self.cart.Get_rank()))
        self.offset, self.shape = cartesian_box(self.global_shape, self.dims, self.coords)
        self.local_shape = (self.shape[0] + 2, self.shape[1] + 2)
        self.south, self.north = self.cart.Shift(0, 1)
        self.west, self.east = self.cart.Shift(1, 1)
        ny, nx = self.shape
        self._col_send = np.empty(ny + 2)
        self._col_recv = np.empty(ny + 2)

    def global_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Global (j, i) indices of this rank's interior, as broadcastable arrays."""
        ny, nx = self.shape
        j = np.arange(self.offset[0], self.offset[0] + ny)[:, None]
        i = np.arange(self.offset[1], self.offset[1] + nx)[None, :]
        return j, i

    def exchange(self, a: np.ndarray) -> None:
        """Fill the halo of ``a`` from the neighbours (rows, then whole columns,
        so the corners arrive too).  Edges without a neighbour are left as they are."""
        c = self.cart
        c.Sendrecv(a[1, :], self.south, 1, a[-1, :], self.north, 1)
        c.Sendrecv(a[-2, :], self.north, 2, a[0, :], self.south, 2)
        if a.dtype != self._col_send.dtype:
            self._col_send = np.empty(a.shape[0], a.dtype)
            self._col_recv = np.empty(a.shape[0], a.dtype)
        for send_col, dest, recv_col, src, tag in ((1, self.west, -1, self.east, 3),
                                                   (-2, self.east, 0, self.west, 4)):
            self._col_send[:] = a[:, send_col]
            c.Sendrecv(self._col_send, dest, tag, self._col_recv, src, tag)
            if src != MPI.PROC_NULL:
                a[:, recv_col] = self._col_recv

    def free(self) -> None:
        self.cart.Free()
