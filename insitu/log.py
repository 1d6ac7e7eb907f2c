"""Logging: rank 0 speaks; other ranks report only errors."""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("insitu")


def setup(rank: int, level: str = "INFO") -> logging.Logger:
    """Send ``insitu`` log records to stderr, tagged with the rank.

    Rank 0 logs at ``level``; other ranks at ERROR, so a thousand ranks do
    not print a thousand copies of the same line, yet a failure on any rank
    is still seen.
    """
    for h in list(log.handlers):
        if getattr(h, "_insitu", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._insitu = True
    handler.setFormatter(logging.Formatter(f"insitu[{rank}] %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(level if rank == 0 else "ERROR")
    log.propagate = False
    return log
