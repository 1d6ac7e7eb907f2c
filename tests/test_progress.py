"""The progress bar: drawn on a terminal, silent in pipes (CI, log files)."""
import io

from insitu.progress import Progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_draws_on_a_terminal():
    s = Tty()
    p = Progress(10, enabled=True, stream=s)
    p.update(10, "T_mean=281")
    p.close()
    assert "10/10 steps" in s.getvalue() and "T_mean=281" in s.getvalue()


def test_silent_in_a_pipe_or_when_disabled():
    s = io.StringIO()
    Progress(10, enabled=True, stream=s).update(10)
    t = Tty()
    Progress(10, enabled=False, stream=t).update(10)
    assert s.getvalue() == "" and t.getvalue() == ""


def test_label_shows_only_plain_numbers():
    import numpy as np

    from insitu.analyses.base import Piece
    from insitu.run import progress_label
    assert progress_label({}) == ""
    assert progress_label({"h": np.arange(3), "p": Piece((0,), np.ones(2)), "q": None}) == ""
    assert progress_label({"h": np.arange(3), "T_max": np.float64(305.25)}) == "T_max=305.25"
