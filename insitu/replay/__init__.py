"""Replay archived NetCDF/HDF5 through the same pipeline as a live model.

``mpirun -n N python -m insitu.replay --input 'ta_Amon_*.nc' --variable ta
--config analyses.yaml --output out.h5``, or from Python::

    from insitu import replay
    replay.run(inputs=["g=ta_Amon_GISS-E2-1-G_*.nc", "h=ta_Amon_GISS-E2-1-H_*.nc"],
               variables="ta", config="analyses.yaml", output="out.h5")

Replay is a third host beside :mod:`insitu.run` (Python stand-ins) and
:mod:`insitu.cabi` (Fortran/C): it declares fields from the files' metadata
and exposes the slabs it reads, through :mod:`insitu.api`; every analysis,
the reduction and the writer are the live path's.  See ``docs/replay.md``.

* :mod:`.fileset`: globs, decoded-time ordering, gaps and overlaps, selection;
* :mod:`.sources`: netCDF-4 through h5py, netCDF-3 through netCDF4-python;
* :mod:`.reader`: per-rank hyperslab reads, read ahead in a thread, CF masking
  and unpacking;
* :mod:`.naming`: field names;
* :mod:`.host`: the host itself; :mod:`.cli`: the command line.
"""
from .host import ReplayError, Summary, replay_config, run

__all__ = ["ReplayError", "Summary", "replay_config", "run"]
