!> Proves that Python errors reach the Fortran caller as statuses with
!> messages (ierr present), and that state errors are caught.
!> usage: mpirun -n N ./error_check GOOD_CONFIG
program error_check
   use, intrinsic :: iso_fortran_env, only: int64
   use mpi_f08
   use insitu
   implicit none
   character(len=1024) :: good
   integer :: ierr, rank
   real(8), target :: a(0:5, 0:5)
   character(len=:), allocatable :: msg

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call get_command_argument(1, good)

   ! 1. step before init: a state error, not a crash
   call insitu_step(1, 0d0, ierr)
   call expect(ierr == INSITU_ERR_STATE, "step before init gives INSITU_ERR_STATE")

   ! 2. a config that does not exist: the Python exception's message arrives
   call insitu_init(MPI_COMM_WORLD, "/nonexistent/insitu.yaml", ierr)
   msg = insitu_last_error()
   if (ierr == INSITU_ERR_PYTHON) then
      write (*, '(a)') "PYTHON-START-FAILED: "//msg
      call MPI_Finalize()
      stop 3
   end if
   call expect(ierr == INSITU_ERR, "missing config gives INSITU_ERR")
   call expect(index(msg, "/nonexistent/insitu.yaml") > 0, "message names the config path: "//msg)

   ! 3. a good init, then a declaration whose halo leaves no interior
   call insitu_init(MPI_COMM_WORLD, trim(good), ierr)
   call expect(ierr == INSITU_OK, "good init: "//insitu_last_error())
   call insitu_declare("T", a, global_shape=[6, 6], offset=[0, 0], halo=[3, 3], ierr=ierr)
   msg = insitu_last_error()
   call expect(ierr == INSITU_ERR, "bad halo gives INSITU_ERR")
   call expect(index(msg, "'T'") > 0 .and. index(msg, "interior") > 0, "message names field: "//msg)

   ! 4. expose of an undeclared field is refused in C
   call insitu_expose("nope", a, ierr)
   call expect(ierr == INSITU_ERR_ARGUMENT, "undeclared expose gives INSITU_ERR_ARGUMENT")

   call insitu_finalize(ierr)
   call expect(ierr == INSITU_OK, "finalize: "//insitu_last_error())
   call insitu_finalize(ierr)
   call expect(ierr == INSITU_ERR_STATE, "second finalize gives INSITU_ERR_STATE")

   if (rank == 0) write (*, '(a)') "ALL-CHECKS-PASSED"
   call MPI_Finalize()

contains
   subroutine expect(cond, what)
      logical, intent(in) :: cond
      character(len=*), intent(in) :: what
      if (.not. cond) then
         write (*, '(a)') "CHECK-FAILED: "//what
         call MPI_Abort(MPI_COMM_WORLD, 1)
      end if
   end subroutine
end program error_check
