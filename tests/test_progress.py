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
