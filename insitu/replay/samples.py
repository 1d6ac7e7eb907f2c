"""Where the ``esmvaltool-sample-data`` package keeps its CMIP6 files.

``python -m insitu.replay.samples`` prints the folder (the worked example
in docs/replay.md globs under it).  The package is a test and example
dependency, never a run-time one: it is located, not imported (its
``__init__`` imports iris, which replay does not need).
"""
from __future__ import annotations

import importlib.util
import os
import sys


def cmip6_dir() -> str | None:
    """``.../esmvaltool_sample_data/data/timeseries/CMIP6``, or None if the
    package is not installed."""
    spec = importlib.util.find_spec("esmvaltool_sample_data")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "timeseries", "CMIP6")


def main() -> int:
    d = cmip6_dir()
    if d is None:
        sys.stderr.write("insitu: esmvaltool-sample-data is not installed "
                         "(pip install esmvaltool-sample-data)\n")
        return 1
    print(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
