!> Proves that Python errors reach the Fortran caller as statuses with
!> messages (ierr present), and that state errors are caught.
!> usage: mpirun -n N ./error_check GOOD_CONFIG
program error_check
   use, intrinsic :: iso_fortran_env, only: int64
   use mpi_f08
   use insitu
   implicit none
   character(len=1024) :: good
   integer :: ierr, rank, nranks
   real(8), target :: a(0:5, 0:5), small(2, 2)
   real(4), target :: a4(0:5, 0:5)
   integer, target :: ai(0:5, 0:5)
   real(8), target :: a3(0:5, 0:5, 1)
   character(len=:), allocatable :: msg

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nranks)
   a = 1d0
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
   call expect(index(insitu_last_error(), "'nope'") > 0, "message names it: "//insitu_last_error())

   ! 5. a declaration whose global_shape has the wrong length: a message too
   call insitu_declare("W", a, global_shape=[6], offset=[0, 0], halo=[1, 1], ierr=ierr)
   msg = insitu_last_error()
   call expect(ierr == INSITU_ERR_ARGUMENT, "short global_shape gives INSITU_ERR_ARGUMENT")
   call expect(index(msg, "'W'") > 0 .and. index(msg, "global_shape") > 0, "message: "//msg)

   ! 6. T declared right (real(8), 6x6 with a halo of 1); then arrays of
   !    another kind, shape or rank, or not contiguous, are refused at the
   !    call with a message naming the field, both sides and the rank
   call insitu_declare("T", a, global_shape=[4 * nranks, 4], offset=[4 * rank, 0], halo=[1, 1], &
                       ierr=ierr)
   call expect(ierr == INSITU_OK, "good declare: "//insitu_last_error())
   call insitu_expose("T", a4, ierr)
   msg = insitu_last_error()
   call expect(ierr == INSITU_ERR_ARGUMENT, "real(4) for real(8) gives INSITU_ERR_ARGUMENT")
   call expect(index(msg, "declared real64 with local shape (6, 6)") > 0 .and. &
               index(msg, "passed real32") > 0 .and. index(msg, "(rank ") > 0, "message: "//msg)
   call insitu_expose("T", ai, ierr)
   call expect(ierr == INSITU_ERR_ARGUMENT .and. index(insitu_last_error(), "passed int32") > 0, &
               "integer for real(8): "//insitu_last_error())
   call insitu_expose("T", small, ierr)
   call expect(ierr == INSITU_ERR_ARGUMENT .and. &
               index(insitu_last_error(), "passed real64 with shape (2, 2)") > 0, &
               "2x2 for 6x6: "//insitu_last_error())
   call insitu_expose("T", a3, ierr)
   call expect(ierr == INSITU_ERR_ARGUMENT .and. &
               index(insitu_last_error(), "shape (6, 6, 1)") > 0, "rank 3 for rank 2: "//insitu_last_error())
   call insitu_expose("T", a(0:5:2, :), ierr)
   call expect(ierr == INSITU_ERR_ARGUMENT .and. index(insitu_last_error(), "contiguous") > 0, &
               "non-contiguous: "//insitu_last_error())
   call insitu_step(1, 0d0, ierr)
   call expect(ierr == INSITU_OK, "the refused exposes left T as declared: "//insitu_last_error())

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
