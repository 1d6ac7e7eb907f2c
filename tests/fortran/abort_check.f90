!> Without ierr, a failed call prints its message and aborts the whole job
!> (it must not leave the other ranks hanging).
program abort_check
   use mpi_f08
   use insitu
   implicit none
   real(8), target :: a(4)
   integer :: rank
   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call insitu_init(MPI_COMM_WORLD, "/nonexistent/insitu.yaml")
   write (*, '(a)') "NOT-REACHED"
   call MPI_Finalize()
end program abort_check
