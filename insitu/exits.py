"""Exit statuses of a job that insitu ends (README, "What happens when
something goes wrong"), in one place for every module that ends a job."""

#: a config or usage error, found on every rank (one line, no MPI_Abort)
EXIT_CONFIG = 2
#: an analysis raised under ``on_error: abort`` (MPI_Abort)
EXIT_ANALYSIS = 3
#: a mistake at the model interface: a bad declaration or exposed array,
#: ranks on different steps or calls, a rank that never joined a collective
EXIT_INTERFACE = 4
#: the output could not be written (a full disk, an I/O error)
EXIT_OUTPUT = 5
