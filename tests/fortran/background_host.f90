!> A Fortran host for the background writer (output.writer: background).
!>
!> usage: mpirun -n N ./background_host CONFIG LEVEL NSTEPS
!>   LEVEL is single (what MPI_Init gives) or multiple (what the background
!>   writer needs): MPI_Init_thread asks for it, and the program stops if
!>   MPI provides less.  The ranks form a 1-D Cartesian communicator (the
!>   conditions of docs/mpiio.md) and hand insitu T(x, y) with a 1-cell halo,
!>   interior values mod(7*gx + 13*gy + 5*step, 1000) - 300 for 0-based
!>   global (gx, gy), 8 x 6 cells per rank stacked along y.
!>   Prints "INIT-STATUS <rank> <status> <message>" and, at the end,
!>   "DONE <rank>".
program background_host
   use, intrinsic :: iso_fortran_env, only: error_unit
   use mpi_f08
   use insitu
   implicit none
   integer, parameter :: nx = 8, ny = 6
   character(len=1024) :: config, arg
   character(len=16) :: level
   integer :: ierr, required, provided, rank, nprocs, nsteps, step, i, j
   integer :: dims(1)
   logical :: periods(1)
   type(MPI_Comm) :: cart
   real(8), allocatable, target :: t(:, :)

   call get_command_argument(1, config)
   call get_command_argument(2, level)
   call get_command_argument(3, arg)
   read (arg, *) nsteps
   select case (trim(level))
   case ("single"); required = MPI_THREAD_SINGLE
   case ("multiple"); required = MPI_THREAD_MULTIPLE
   case default
      write (error_unit, '(a)') "background_host: LEVEL must be single or multiple"
      stop 2
   end select
   call MPI_Init_thread(required, provided)
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   if (provided < required) then
      write (error_unit, '(a,i0,a,i0)') "background_host: asked for thread level ", &
         required, ", MPI provides ", provided
      call MPI_Abort(MPI_COMM_WORLD, 3)
   end if
   dims = nprocs
   periods = .false.
   call MPI_Cart_create(MPI_COMM_WORLD, 1, dims, periods, .false., cart)

   call insitu_init(cart, trim(config), ierr)
   write (*, '(a,i0,a,i0,a,a)') "INIT-STATUS ", rank, " ", ierr, " ", trim(insitu_last_error())
   flush (6)
   if (ierr /= INSITU_OK) then
      call MPI_Finalize()
      stop
   end if
   allocate (t(0:nx + 1, 0:ny + 1))
   t = -1d30
   call insitu_declare("T", t, global_shape=[nx, ny * nprocs], offset=[0, ny * rank], &
                       halo=[1, 1], ierr=ierr)
   if (ierr /= INSITU_OK) call MPI_Abort(MPI_COMM_WORLD, 4)
   do step = 1, nsteps
      do j = 1, ny
         do i = 1, nx
            t(i, j) = mod(7 * (i - 1) + 13 * (ny * rank + j - 1) + 5 * step, 1000) - 300
         end do
      end do
      call insitu_step(step, 60d0 * step, ierr)
      if (ierr /= INSITU_OK) call MPI_Abort(MPI_COMM_WORLD, 5)
   end do
   call insitu_finalize(ierr)
   if (ierr /= INSITU_OK) call MPI_Abort(MPI_COMM_WORLD, 5)
   write (*, '(a,i0)') "DONE ", rank
   call MPI_Comm_free(cart)
   call MPI_Finalize()
end program
