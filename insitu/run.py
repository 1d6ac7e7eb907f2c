"""Run a Python stand-in model with insitu: ``python -m insitu.run``.

Example::

    mpirun -n 4 python -m insitu.run --model heat2d \\
        --config examples/heat2d.yaml --steps 200 --output out.h5

The model calls the same :mod:`insitu.api` entry points that libinsitu's C
ABI calls.  An unhandled exception on any rank aborts the whole job
(``MPI_Abort``) instead of leaving the other ranks waiting in a collective.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

import numpy as np

log = logging.getLogger("insitu")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m insitu.run", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="heat2d",
                   help="heat2d, life, latlon, module:Class or file.py:Class (default heat2d)")
    p.add_argument("--config", help="YAML config (default: the model's built-in config)")
    p.add_argument("--steps", type=int, default=100, help="steps to run (default 100)")
    p.add_argument("--shape", type=int, nargs="+", metavar="N",
                   help="global grid shape in the model's index order, e.g. --shape 96 128")
    p.add_argument("--output", help="output HDF5 file (overrides output.path)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-progress", action="store_true", help="never show the progress bar")
    p.add_argument("--live", nargs="?", const=5006, type=int, metavar="PORT",
                   help="start the live viewer (python -m insitu.live) on rank 0's host, on "
                        "localhost:PORT (default 5006; 0: any free port), and print its URL")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="K",
                   help="every K steps, checkpoint insitu's state and save the model's "
                        "restart file (docs/restart.md)")
    p.add_argument("--restart", action="store_true",
                   help="go on from the model's restart file and insitu's checkpoint at or "
                        "before its step, appending to the existing output")
    p.add_argument("--model-restart", metavar="PATH",
                   help="the model's restart file (default: <output>.model-restart.h5)")
    args = p.parse_args(argv)
    if args.steps < 0:
        p.error("--steps must be >= 0")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        p.error("--checkpoint-every must be >= 1")
    return args


def _abort_on_error(comm, exc: BaseException, status: int = 1) -> None:
    """An error only this rank may have seen: the others may be waiting in
    a collective already, so the job must end here."""
    from .fields import FieldError
    from .writer import OutputError
    if isinstance(exc, (FieldError, OutputError)):  # a plain message says it all
        what = "model interface error" if isinstance(exc, FieldError) else "output error"
        sys.stderr.write(f"insitu[{comm.Get_rank()}] CRITICAL: {what}, aborting the job: "
                         f"{exc}\n")
    else:
        sys.stderr.write(f"insitu[{comm.Get_rank()}] CRITICAL: unhandled "
                         f"{type(exc).__name__}, aborting the job:\n"
                         + "".join(traceback.format_exception(exc)))
    sys.stderr.flush()
    comm.Abort(status)


def progress_label(results: dict) -> str:
    """``name=value`` of the step's first scalar result, or "" if it has none.

    Results are scalars, arrays, distributed pieces or None (a rank that
    holds no piece), so only plain numbers are shown."""
    for name, value in results.items():
        if isinstance(value, (int, float, np.integer, np.floating)):
            return f"{name}={float(value):.6g}"
    return ""


class Agreed(Exception):
    """An error every rank raised at the same call, so every rank can exit
    with ``status`` after one line from rank 0, with no ``MPI_Abort``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def run(args: argparse.Namespace, comm) -> int:
    from . import api
    from .analyses import AnalysisError
    from .fields import FieldError
    from .models import resolve
    from .exits import EXIT_CONFIG, EXIT_INTERFACE
    from . import options
    from .options import ConfigError, yaml_load
    from .progress import Progress
    from .session import StepError
    from .writer import OutputError

    model_cls = resolve(args.model)
    config = args.config or yaml_load(model_cls.DEFAULT_CONFIG)
    kwargs = {"shape": tuple(args.shape)} if args.shape else {}
    try:
        model = model_cls(comm, **kwargs)
    except ValueError as exc:
        raise Agreed(EXIT_CONFIG, f"config error: model {args.model}: {exc}") from None
    # init, declare and the first step's check of the config against the
    # declarations fail identically on every rank (each reads the same
    # config; declarations are checked collectively), before the output
    # file exists.  A ConfigError from any of them reaches main(), which
    # treats every ConfigError as such.
    model_restart = None
    first = 1
    restart = None
    parsed = options.load(config) if isinstance(config, str) else options.parse(config)
    # output.restart: true in the config is --restart: the model goes on
    # from its restart file, as insitu does from its checkpoint
    args.restart = args.restart or parsed["output"]["restart"]
    if args.restart or args.checkpoint_every:
        if not hasattr(model, "save_restart"):
            raise Agreed(EXIT_CONFIG, f"config error: model {args.model} keeps no restart "
                                      "file (--checkpoint-every, --restart)")
        out = args.output or parsed["output"]["path"]
        model_restart = args.model_restart or f"{out}.model-restart.h5"
    if args.restart:
        try:
            restart = model.load_restart(model_restart)
        except ValueError as exc:
            raise Agreed(EXIT_CONFIG, f"config error: {exc}") from None
        first = restart + 1
    try:
        session = api.init(comm, config, output=args.output,
                           overwrite=True if args.overwrite else None,
                           host=f"python:{args.model}", restart=restart)
    except (OutputError, AnalysisError) as exc:
        raise Agreed(EXIT_CONFIG, f"config error: {exc}") from None
    try:
        model.declare(api)
    except ConfigError:  # the config's dims for a field (a FieldConfigError): main() says it
        raise
    except (FieldError, StepError) as exc:  # checked collectively: every rank raises
        raise Agreed(EXIT_INTERFACE, f"model interface error: {exc}") from None
    viewer = None
    if getattr(args, "live", None) is not None and comm.Get_rank() == 0:
        from .live.launch import Viewer  # a subprocess beside the run (docs/live.md)
        viewer = Viewer(getattr(session.writer, "path", args.output), args.live)
    bar = Progress(args.steps, enabled=comm.Get_rank() == 0 and not args.no_progress)
    for step in range(first, args.steps + 1):
        model.advance()
        model.expose(api)  # a FieldError here may be one rank's alone: abort
        try:
            # as libinsitu's step: the results stay packed unless read
            results = api.step(step, model.time, results=False)
        except StepError as exc:  # found by the step's handshake: every rank knows
            raise Agreed(EXIT_INTERFACE, f"model interface error: {exc}") from None
        if args.checkpoint_every and step % args.checkpoint_every == 0:
            # insitu's state first, then the model's: a job killed between
            # the two restarts from the model's previous save, whose
            # checkpoint is still kept (output.keep_checkpoints >= 2)
            api.checkpoint(step)
            model.save_restart(model_restart)
        if bar.enabled:
            bar.update(step, progress_label(results))
    bar.close()
    path = getattr(session.writer, "path", "")
    written = session.steps_written
    api.finalize()
    model.free()
    if viewer is not None:
        viewer.stop()
    log.info("wrote %s: %d output step(s) from %d model step(s) on %d rank(s)",
             path, written, args.steps, comm.Get_size())
    return 0


def main(argv=None) -> int:
    """Run; map failures to the exit statuses in the README's table:
    0 ok, 2 config or usage, 3 an analysis error (``on_error: abort``, via
    ``MPI_Abort``), 4 a model-interface error, 5 the output could not be
    written."""
    args = parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    from .mpiio import apply_defaults; apply_defaults()  # noqa: E702 - before MPI_Init; docs/mpiio.md
    from mpi4py import MPI

    from .log import setup

    comm = MPI.COMM_WORLD
    setup(comm.Get_rank())
    try:
        return run(args, comm)
    except Agreed as exc:
        # Every rank fails the same way: a clean exit, one message.
        if comm.Get_rank() == 0:
            sys.stderr.write(f"insitu: {exc}\n")
        return exc.status
    except BaseException as exc:  # noqa: BLE001 - never leave ranks hanging
        return failed(comm, exc)


def failed(comm, exc: BaseException) -> int:
    """The exit status of a command-line host (``insitu.run``,
    ``insitu.replay``) for an exception its run raised, called from the
    ``except`` that caught it.  A config error is found on every rank alike
    (each reads the config): one line from rank 0.  Anything else may be
    this rank's alone, so with others waiting the job is aborted; a lone
    rank says it and returns, re-raising what is not insitu's own."""
    from .exits import EXIT_CONFIG, EXIT_INTERFACE, EXIT_OUTPUT
    from .fields import FieldError
    from .options import ConfigError
    from .writer import OutputError
    if isinstance(exc, ConfigError):
        if comm.Get_rank() == 0 and not getattr(exc, "quiet", False):  # LaunchError: once
            sys.stderr.write(f"insitu: config error: {exc}\n")
        return EXIT_CONFIG
    status = EXIT_INTERFACE if isinstance(exc, FieldError) else \
        EXIT_OUTPUT if isinstance(exc, OutputError) else 1
    # An output error aborts even alone: the file cannot be closed on a
    # full disk, and the interpreter's teardown would try, noisily.
    if comm.Get_size() == 1 and not isinstance(exc, OutputError):
        sys.stderr.write(f"insitu: {type(exc).__name__}: {exc}\n")
        if status == 1:
            raise exc
        return status
    _abort_on_error(comm, exc, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
