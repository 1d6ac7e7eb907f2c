"""The stand-in models rewritten from their equations, for the tests' truth.

The models' own ``reference`` functions reuse the models' ``stencil``,
``initial`` and ``rule``, so a mistake there would be in both sides of a
comparison.  These are written again here, from the physics and the rules
(np.roll on the whole grid, no halos, no shared code); they must agree with
the models' references (tests/test_truth.py), and the end-to-end tests
compare insitu's output with these.
"""
import numpy as np

# The heat model's constants, restated: fixed boundary 280 K, diffusion
# number 0.2, 60 s steps, a warm Gaussian blob plus a sine pattern.
HEAT_BOUNDARY, HEAT_ALPHA, HEAT_DT = 280.0, 0.2, 60.0


def heat_initial(ny, nx):
    y = (np.arange(ny)[:, None] + 0.5) / ny
    x = (np.arange(nx)[None, :] + 0.5) / nx
    blob = 40.0 * np.exp(-((x - 0.35) ** 2 + (y - 0.6) ** 2) / 0.01)
    return HEAT_BOUNDARY + blob + 10.0 * np.sin(2 * np.pi * x) * np.cos(np.pi * y)


def heat(shape, steps):
    """``{step: T}`` for the explicit 5-point heat equation, T(y, x), with the
    boundary held at 280 K outside the grid."""
    ny, nx = shape
    t = heat_initial(ny, nx)
    out = {}
    for step in range(1, steps + 1):
        up = np.vstack([np.full((1, nx), HEAT_BOUNDARY), t[:-1]])
        down = np.vstack([t[1:], np.full((1, nx), HEAT_BOUNDARY)])
        left = np.hstack([np.full((ny, 1), HEAT_BOUNDARY), t[:, :-1]])
        right = np.hstack([t[:, 1:], np.full((ny, 1), HEAT_BOUNDARY)])
        t = t + HEAT_ALPHA * (up + down + left + right - 4.0 * t)
        out[step] = t
    return out


def life_step(a):
    """Conway's rule on a torus: born with 3 neighbours, survives with 2 or 3."""
    n = sum(np.roll(np.roll(a, dy, 0), dx, 1)
            for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
    return ((n == 3) | ((a == 1) & (n == 2))).astype(np.int32)


def life(start, steps):
    out, a = {}, start
    for step in range(1, steps + 1):
        a = life_step(a)
        out[step] = a
    return out
