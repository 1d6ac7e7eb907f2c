"""The live view of a run: ``python -m insitu.live OUT.h5 [--port 5006] [--host 127.0.0.1]``.

A Bokeh server app (:mod:`insitu.live.app`) that shows an insitu output
file while a run writes it, updating as rows land: time series of scalars
(several per plot, selectable), the latest map of a snapshot, coarse field
or reduction with a step slider, histograms, windows with their bounds,
trigger firings marked on the time axis, and the run's progress and errors
from the file's attributes.  It reads through :mod:`insitu.reader`
(committed rows only, no file lock, read-only: it never writes the file),
polls about once a second, and waits for a file that does not exist yet.
It listens on localhost unless told otherwise (docs/live.md).
"""
