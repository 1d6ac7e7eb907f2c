"""Which MPI and which launcher a job runs under, and the wrong-size guard.

A launcher that cannot talk to the MPI library does not fail: each process
it starts finds no process-management interface it understands, initialises
as a *singleton* (``MPI_COMM_WORLD`` of size 1), runs the whole model alone
and writes the same output file as its copies.  That is what MPICH does
under ``srun --mpi=pmix`` or ``--mpi=none`` (it needs ``--mpi=pmi2``), and
what either MPI does when started by the other's ``mpiexec``.  Debian's
Open MPI under ``srun --mpi=pmi2`` aborts in ``MPI_Init`` instead (it has
no Slurm PMI-2), so for it the guard names ``--mpi=pmix`` for completeness.

:func:`check_launch` compares the size the launcher announced in the
environment with ``MPI_COMM_WORLD``'s and refuses to start insitu on a
mismatch (:class:`LaunchError`, a config error: exit status 2), before the
output file exists.  Which variable to believe, in this order:

1. ``OMPI_COMM_WORLD_SIZE``: set by Open MPI's own launcher (mpirun and its
   orted daemons) for each rank it starts;
2. ``PMI_SIZE``: set by a PMI-1/PMI-2 launcher, MPICH's hydra ``mpiexec``
   or ``srun --mpi=pmi2``;
3. ``PMIX_SIZE``, where a PMIx launcher exports it (Slurm 22.05's pmix
   plugin does not);
4. ``SLURM_STEP_NUM_TASKS`` (then ``SLURM_NTASKS``), only inside a job step
   (``SLURM_STEP_ID`` set), and not in a heterogeneous job.

The MPI launchers' variables come first because Slurm's can be stale:
``SLURM_NTASKS`` is the allocation's task count in an ``sbatch`` script
(where ``mpirun -n 1`` or a plain ``python`` is legitimate), and an
``mpirun`` or hydra ``mpiexec`` inside an allocation starts its daemons with
``srun``, one task per node, so its ranks see ``SLURM_STEP_NUM_TASKS=1``
(all measured under Slurm 22.05 here; docs/slurm.md).  Only
``MPI_COMM_WORLD`` is compared, never the communicator insitu was given:
a model may run insitu on a sub-communicator of its own.  Every rank
of a job reads the same launcher environment, so every rank decides alike
and no collective is needed.  ``INSITU_LAUNCH_CHECK=0`` turns the guard off
(for a launcher that exports a misleading size, e.g. a process spawned
from inside a rank).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

from .options import ConfigError

#: The launcher variables, in the order they are believed, and who sets them.
SIZE_VARIABLES = (
    ("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun", "mpirun"),
    ("PMI_SIZE", "a PMI launcher", "pmi"),
    ("PMIX_SIZE", "a PMIx launcher", "pmix"),
)

#: The launcher's rank of this process, in the order of SIZE_VARIABLES.
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID")


class LaunchError(ConfigError):
    """MPI_COMM_WORLD is not the size the launcher started: a usage error,
    the same on every rank, reported before the output file exists.

    ``quiet`` is true on every process but the launcher's rank 0: the N
    singletons are each rank 0 of their own world, and one line is enough."""

    def __init__(self, message: str, quiet: bool = False) -> None:
        super().__init__(message)
        self.quiet = quiet


@dataclass(frozen=True)
class Launch:
    """What the environment says about the launch."""

    name: str                #: e.g. "srun (Slurm job 12, step 0)", "Open MPI's mpirun"
    size: Optional[int]      #: the number of processes the launcher started, if it says
    variable: Optional[str]  #: the variable ``size`` was read from
    slurm: bool              #: inside a Slurm job step
    kind: str = "none"       #: mpirun, hydra, srun, pmi, pmix, batch or none


@dataclass(frozen=True)
class Family:
    """An MPI library, from its ``MPI_Get_library_version`` string."""

    name: str     #: "Open MPI", "MPICH", "Intel MPI", "MVAPICH", "Cray MPICH" or "unknown"
    version: str  #: as the library reports it, or ""

    @property
    def mpich_like(self) -> bool:
        return self.name in ("MPICH", "Intel MPI", "MVAPICH", "Cray MPICH")

    def srun_option(self) -> str:
        """The ``srun --mpi`` plugin this family talks to."""
        if self.name == "Open MPI":
            return "--mpi=pmix"
        if self.name == "Cray MPICH":
            return "--mpi=cray_shasta"
        return "--mpi=pmi2"

    def mpiexec(self) -> str:
        """This family's own launcher, as Debian names it."""
        return {"Open MPI": "mpirun.openmpi", "MPICH": "mpiexec.mpich"}.get(
            self.name, f"{self.name}'s mpiexec")

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()


_FAMILIES = (  # most specific first: Cray's and MVAPICH's strings also say MPICH
    ("Cray MPICH", re.compile(r"CRAY MPICH version (\S+)", re.I)),
    ("Intel MPI", re.compile(r"Intel\(R\) MPI Library (\S+)")),
    ("MVAPICH", re.compile(r"MVAPICH2? Version\s*:?\s*(\S+)", re.I)),
    ("MPICH", re.compile(r"MPICH Version:\s*(\S+)")),
    ("Open MPI", re.compile(r"Open MPI v(\S+?),")),
)


def mpi_family(library_version: str) -> Family:
    """The family and version in an ``MPI_Get_library_version`` string."""
    text = (library_version or "").replace("\x00", "")
    for name, pattern in _FAMILIES:
        m = pattern.search(text)
        if m:
            return Family(name, m.group(1))
    return Family("unknown", text.splitlines()[0].strip() if text.strip() else "")


def _int(value: Optional[str]) -> Optional[int]:
    try:
        n = int(value) if value is not None else None
    except ValueError:
        return None
    return n if n is not None and n > 0 else None


def launcher_rank(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """This process's rank as the launcher numbered it, if it says."""
    env = os.environ if environ is None else environ
    for variable in RANK_VARIABLES:
        try:
            return int(env[variable])
        except (KeyError, ValueError):
            continue
    return None


def detect(environ: Optional[Mapping[str, str]] = None) -> Launch:
    """The launcher and the size it announced (see the module's docstring
    for the order and why)."""
    env = os.environ if environ is None else environ
    step = env.get("SLURM_STEP_ID", env.get("SLURM_STEPID"))
    in_step = step is not None and env.get("SLURM_JOB_ID") is not None
    for variable, who, kind in SIZE_VARIABLES:
        size = _int(env.get(variable))
        if size is not None:
            # hydra exports MPI_LOCALNRANKS (and HYDI_CONTROL_FD outside Slurm);
            # srun's pmi2 plugin exports neither.
            if kind == "pmi" and ("MPI_LOCALNRANKS" in env or "HYDI_CONTROL_FD" in env):
                who, kind = "MPICH's mpiexec (hydra)", "hydra"
            elif kind == "pmi" and in_step:
                who, kind = "srun --mpi=pmi2", "srun"
            return Launch(who, size, variable, in_step, kind)
    if in_step:
        name = f"srun (Slurm job {env.get('SLURM_JOB_ID')}, step {step})"
        if env.get("SLURM_HET_SIZE") or env.get("SLURM_PACK_SIZE"):
            return Launch(name + ", heterogeneous", None, None, True, "srun")
        for variable in ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"):
            size = _int(env.get(variable))
            if size is not None:
                return Launch(name, size, variable, True, "srun")
        return Launch(name, None, None, True, "srun")
    if env.get("SLURM_JOB_ID") is not None:
        return Launch(f"a Slurm batch script or salloc shell (job {env.get('SLURM_JOB_ID')}), "
                      "no launcher", None, None, False, "batch")
    return Launch("no launcher (a singleton)", None, None, False, "none")


def mismatch_message(launch: Launch, world_size: int, family: Family) -> str:
    """One line: what is wrong, what it would do, and the likely fix."""
    what = (f"{launch.name} started {launch.size} processes ({launch.variable}="
            f"{launch.size}) but MPI_COMM_WORLD has size {world_size} in this one: ")
    if world_size == 1:
        what += ("each process is a separate one-rank MPI job, and every copy would "
                 "compute the whole model and write the same output file. ")
    else:
        what += "the launcher and the MPI library do not agree. "
    if launch.kind == "mpirun" and family.name != "Open MPI":
        fix = (f"Open MPI's mpirun started a program whose MPI is {family}: start it with "
               f"{family.mpiexec()}")
    elif launch.kind in ("hydra", "pmi") and family.name == "Open MPI":
        fix = (f"an MPICH-family mpiexec started a program whose MPI is {family}: start it "
               f"with Open MPI's mpirun (mpirun.openmpi), or use an mpi4py built for that MPI")
    elif launch.kind == "srun":
        fix = (f"this MPI is {family}: launch with `srun {family.srun_option()}` (or set "
               f"MpiDefault={family.srun_option().split('=')[1]} in slurm.conf)")
    else:
        fix = (f"this MPI is {family}: start the program with the launcher of the MPI that "
               f"mpi4py was built against ({family.mpiexec()})")
    return f"launch error: {what}Fix: {fix}. (INSITU_LAUNCH_CHECK=0 skips this check.)"


def check_launch(world_size: int, library_version: str,
                 environ: Optional[Mapping[str, str]] = None) -> Launch:
    """Raise :class:`LaunchError` when the launcher started a different
    number of processes than ``world_size`` (MPI_COMM_WORLD's size)."""
    env = os.environ if environ is None else environ
    launch = detect(env)
    if env.get("INSITU_LAUNCH_CHECK", "1") in ("0", "false", "no", "off"):
        return launch
    if launch.size is not None and launch.size != world_size:
        raise LaunchError(mismatch_message(launch, world_size, mpi_family(library_version)),
                          quiet=launcher_rank(env) not in (None, 0))
    return launch


def check_mpi_launch(comm) -> None:
    """:func:`check_launch` for an mpi4py communicator (or insitu's wrapper
    of one): compares ``MPI_COMM_WORLD``, whatever communicator insitu was
    given.  Fake communicators (tests) are not checked."""
    raw = getattr(comm, "comm", comm)
    if not hasattr(raw, "Get_size"):
        return
    from mpi4py import MPI
    check_launch(MPI.COMM_WORLD.Get_size(), MPI.Get_library_version())
