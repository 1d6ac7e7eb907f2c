# Environment for running insitu's MPI jobs on this machine; sourced by the scripts.
# Open MPI refuses to run as root, or to put more ranks than cores, without these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# One numba thread per rank: ranks already fill the cores.
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-1}
