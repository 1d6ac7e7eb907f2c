"""``insitu.run --live``: the viewer as a subprocess beside the run, on rank
0's host.

It is a separate process (``python -m insitu.live``), not a thread of rank
0, so that serving pages never takes time from the model's rank and a
viewer's failure cannot touch the run; it reads the file like any other
reader (docs/live.md).  Its URL is printed to stderr once it listens.  At
the end of the run it is given a moment for a last poll (the page then
says "finished") and stopped; ``python -m insitu.live OUT.h5`` keeps
watching a file for as long as wanted.
"""
from __future__ import annotations

import atexit
import logging
import subprocess
import sys
import threading
import time

log = logging.getLogger("insitu.live")

#: seconds to wait for the viewer to listen, and to let it poll once more
#: at the end of the run
START_TIMEOUT = 60
LAST_POLL = 2.0


class Viewer:
    def __init__(self, path: str, port: int = 5006, host: str = "127.0.0.1") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "insitu.live", str(path), "--port", str(port),
             "--host", host], stdout=subprocess.PIPE, text=True)
        atexit.register(self.stop, 0)
        self.url = None
        got = threading.Event()

        def first_line():
            line = self.proc.stdout.readline()
            if " at " in line:
                self.url = line.split(" at ", 1)[1].strip()
            got.set()
            for _ in self.proc.stdout:  # drain, so the viewer never blocks on a pipe
                pass
        threading.Thread(target=first_line, daemon=True).start()
        if not got.wait(START_TIMEOUT) or self.url is None:
            sys.stderr.write("insitu: the live viewer did not start (see its messages above); "
                             "the run goes on without it\n")
        else:
            sys.stderr.write(f"insitu.live: serving {path} at {self.url}\n")
        sys.stderr.flush()

    def stop(self, linger: float = LAST_POLL) -> None:
        if self.proc.poll() is None:
            time.sleep(linger)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
