"""``python -m insitu.replay``: the command line of :func:`insitu.replay.run`.

Exit statuses are insitu's (:mod:`insitu.exits`): 0 done; 2 a bad input,
config or usage, found on every rank alike (one line from rank 0, no output
file); 3 an analysis raised (``on_error: abort``); 4 a model-interface
error; 5 the output could not be written; 1 a bug.
"""
from __future__ import annotations

import argparse
import os
import sys

USAGE_EXAMPLE = """example:
  mpirun -n 2 python -m insitu.replay --input 'g=ta_Amon_GISS-E2-1-G_*.nc' \\
      --input 'h=ta_Amon_GISS-E2-1-H_*.nc' --variable ta \\
      --config examples/replay/giss.yaml --output giss.h5"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m insitu.replay", epilog=USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replay archived NetCDF/HDF5 files through insitu's analyses.")
    p.add_argument("--input", action="append", required=True, metavar="[NAME=]GLOB",
                   help="a time-partitioned file set (repeat for several models); NAME names "
                        "its field, else <variable>_<source_id>")
    p.add_argument("--variable", action="append", required=True, metavar="VAR",
                   help="a variable to replay (repeatable)")
    p.add_argument("--config", required=True, help="YAML config of the analyses")
    p.add_argument("--output", help="output HDF5 file (overrides output.path)")
    p.add_argument("--start", metavar="DATE", help="first date replayed (YYYY[-MM[-DD]])")
    p.add_argument("--end", metavar="DATE",
                   help="last date replayed, inclusive of what it names (--end 1950: all "
                        "of 1950)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="replay every K-th record (default 1)")
    p.add_argument("--allow-gaps", action="store_true",
                   help="replay a series with holes in time instead of refusing it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    args = p.parse_args(argv)
    if args.every < 1:
        p.error("--every must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from ..mpiio import apply_defaults
    apply_defaults()  # before MPI_Init; docs/mpiio.md
    from mpi4py import MPI

    from ..log import setup
    from ..run import failed
    from .host import ReplayError, run

    comm = MPI.COMM_WORLD
    setup(comm.Get_rank())
    try:
        run(args.input, args.variable, args.config, comm, output=args.output,
            start=args.start, end=args.end, every=args.every, allow_gaps=args.allow_gaps,
            overwrite=True if args.overwrite else None, progress=not args.no_progress)
        return 0
    except ReplayError as exc:  # every rank raised it: one line, one status
        if comm.Get_rank() == 0:
            sys.stderr.write(f"insitu: {exc}\n")
        return exc.status
    except BaseException as exc:  # noqa: BLE001 - never leave ranks hanging
        return failed(comm, exc)
