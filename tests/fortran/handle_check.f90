!> A `use mpi` host (integer communicator handles), as many old models are:
!> insitu_init gets an INTEGER communicator, so the module's init_handle
!> procedure is the one called, not init_f08.
!>
!> usage: mpirun -n N ./handle_check CONFIG NACTIVE LEVEL [NSTEPS]
!>   LEVEL is single or funneled: MPI_Init_thread asks for that level, and
!>   the program stops if MPI provides another.
!>   Ranks 0..NACTIVE-1 split off MPI_COMM_WORLD, form a 2-D Cartesian
!>   grid (MPI_Dims_create, MPI_Cart_create) and run the model with insitu;
!>   the other ranks never touch insitu and do their own collectives on their
!>   own communicator meanwhile.  Everyone meets in a final MPI_Barrier.
!>
!> Field T(x, y), real(8), 1-cell halo filled with garbage; interior values
!> are mod(7*gx + 13*gy + 5*step, 1000) - 300 for 0-based global (gx, gy),
!> so the test rebuilds the field in numpy.
program handle_check
   use, intrinsic :: iso_fortran_env, only: int64, error_unit
   use mpi
   use insitu
   implicit none
   integer, parameter :: nx = 41, ny = 29
   character(len=1024) :: config, arg
   character(len=16) :: level
   integer :: ierr, required, provided, rank, nprocs, nactive, nsteps, color, sub
   integer :: cart, dims(2), coords(2), x0, y0, nxl, nyl, i, j, step, crank, idle_sum, k
   real(8), allocatable, target :: t(:, :)

   call get_command_argument(1, config)
   call get_command_argument(2, arg)
   read (arg, *) nactive
   call get_command_argument(3, level)
   nsteps = 3
   if (command_argument_count() >= 4) then
      call get_command_argument(4, arg)
      read (arg, *) nsteps
   end if
   select case (trim(level))
   case ("single"); required = MPI_THREAD_SINGLE
   case ("funneled"); required = MPI_THREAD_FUNNELED
   case default
      write (error_unit, '(a)') "handle_check: LEVEL must be single or funneled"
      stop 2
   end select

   call MPI_Init_thread(required, provided, ierr)
   call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs, ierr)
   if (provided /= required) then
      write (error_unit, '(a,i0,a,i0)') "handle_check: asked for thread level ", required, &
         ", MPI provides ", provided
      call MPI_Abort(MPI_COMM_WORLD, 3, ierr)
   end if
   if (rank == 0) write (*, '(a,a)') "THREAD-LEVEL ", trim(level)

   color = merge(0, 1, rank < nactive)
   call MPI_Comm_split(MPI_COMM_WORLD, color, rank, sub, ierr)

   if (color == 0) then
      dims = 0
      call MPI_Dims_create(nactive, 2, dims, ierr)
      call MPI_Cart_create(sub, 2, dims, [.false., .false.], .false., cart, ierr)
      call MPI_Comm_rank(cart, crank, ierr)
      call MPI_Cart_coords(cart, crank, 2, coords, ierr)
      call block(nx, dims(1), coords(1), x0, nxl)
      call block(ny, dims(2), coords(2), y0, nyl)
      if (crank == 0) write (*, '(a,i0,a,i0)') "GRID ", dims(1), "x", dims(2)
      allocate (t(0:nxl + 1, 0:nyl + 1))
      t = -1d30

      call insitu_init(cart, trim(config))     ! an INTEGER handle: init_handle
      call insitu_declare("T", t, global_shape=[nx, ny], offset=[x0, y0], halo=[1, 1])
      do step = 1, nsteps
         do j = 1, nyl
            do i = 1, nxl
               t(i, j) = real(mod(7*(x0 + i - 1) + 13*(y0 + j - 1) + 5*step, 1000) - 300, 8)
            end do
         end do
         call insitu_step(step, real(step, 8))
      end do
      call insitu_finalize()
      call MPI_Comm_free(cart, ierr)
   else
      ! Idle ranks: their own work and their own collectives, no insitu.
      idle_sum = 0
      do k = 1, 50
         call MPI_Allreduce(k, i, 1, MPI_INTEGER, MPI_SUM, sub, ierr)
         idle_sum = idle_sum + i
      end do
      write (*, '(a,i0,a,i0)') "IDLE rank ", rank, " sum ", idle_sum
   end if

   call MPI_Comm_free(sub, ierr)
   call MPI_Barrier(MPI_COMM_WORLD, ierr)
   if (rank == 0) write (*, '(a)') "HANDLE-CHECK-DONE"
   call MPI_Finalize(ierr)

contains

   subroutine block(n, p, c, start, size)
      integer, intent(in) :: n, p, c
      integer, intent(out) :: start, size
      size = n/p
      if (c < mod(n, p)) size = size + 1
      start = c*(n/p) + min(c, mod(n, p))
   end subroutine

end program handle_check
