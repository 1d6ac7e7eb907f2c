# Environment for running insitu's MPI jobs on this machine; sourced by the scripts.
# Open MPI refuses to run as root, or to put more ranks than cores, without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# One numba thread per rank: ranks already fill the cores.
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
# Open MPI 4.1.0-4.1.6 and 5.0.0-5.0.5: ompio's data sieving writes without a
# lock and can silently lose cells (open-mpi/ompi#12718); lock the ranges
# written, as fixed releases do by default.  docs/mpiio.md
if [ -z "${OMPI_MCA_io+x}${OMPI_MCA_fs_ufs_lock_algorithm+x}${OMPI_MCA_fcoll+x}" ]; then
    export OMPI_MCA_fs_ufs_lock_algorithm=3
fi
# MPICH (.venv-mpich; docs/mpich.md): its insitu is .venv-mpich/insitu-src,
# whose libinsitu is built with mpif90.mpich.  Python puts the working
# directory first on sys.path, and in the checkout that is the checkout's
# insitu, whose libinsitu is Open MPI's: PYTHONSAFEPATH=1 leaves it off.
if [ "${INSITU_MPI:-openmpi}" = mpich ]; then
    export PYTHONSAFEPATH=1
fi
