"""The heat2d stand-in at a steady pace: each step also sleeps
``INSITU_TEST_STEP_SECONDS`` (default 0.01 s), as a real model spends time
computing.  The tests that watch a run while it runs use it so that the run
lasts long enough for their readers whatever the machine's speed
(``--model tests/mpi_programs/paced_heat.py:PacedHeat``)."""
import os
import time

from insitu.models.heat2d import Heat2D


class PacedHeat(Heat2D):
    PAUSE = float(os.environ.get("INSITU_TEST_STEP_SECONDS", "0.01"))

    def advance(self) -> None:
        super().advance()
        time.sleep(self.PAUSE)
