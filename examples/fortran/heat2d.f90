!> 2-D heat diffusion with a 2-D MPI decomposition, halos and real(8) fields,
!> analysed in situ by insitu.  The same model as insitu/models/heat2d.py
!> (same initial state, boundary and arithmetic), written the Fortran way:
!> T(x, y), column-major, two buffers swapped every step.
!>
!> usage: mpirun -n 4 ./heat2d CONFIG [NX NY NSTEPS] [--no-insitu]
!>                              [--checkpoint-every K] [--restart]
!>
!> --checkpoint-every K: every K steps, insitu_checkpoint stores insitu's
!> analysis state in its output file, then each rank writes its part of the
!> model's own restart file (heat2d-restart.<rank>, the step and its
!> interior, under a temporary name then renamed), as real models do.
!> --restart: read that file back and go on from its step; insitu_init
!> restarts from the output file's checkpoint at or before it
!> (docs/restart.md).  The model's restart file is per rank, so a restart
!> needs the rank count and grid of the run that wrote it (insitu's own
!> state is decomposition-free: the Python stand-ins restart on any count).
program heat2d
   use, intrinsic :: iso_fortran_env, only: int64, error_unit
   use mpi_f08
   use insitu
   implicit none

   real(8), parameter :: boundary = 280d0, alpha = 0.2d0, dt = 60d0
   real(8), parameter :: pi = 3.14159265358979323846d0
   integer :: nx = 128, ny = 96, nsteps = 100
   character(len=1024) :: config, arg
   logical :: use_insitu = .true.
   type(MPI_Comm) :: cart
   integer :: nprocs, rank, dims(2), coords(2), west, east, south, north
   integer :: x0, y0, nxl, nyl, i, j, step, nargs, k, nwarm
   integer :: ckevery = 0, first = 1
   logical :: restart = .false.
   real(8), allocatable, target :: ta(:, :), tb(:, :), area(:, :)
   real(8), pointer :: t(:, :), tn(:, :), tmp(:, :)
   real(8), allocatable :: sendbuf(:), recvbuf(:)
   real(8) :: x, y, wtime

   call MPI_Init()
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)

   nargs = command_argument_count()
   if (nargs < 1) then
      if (rank == 0) write (error_unit, '(a)') "usage: heat2d CONFIG [NX NY NSTEPS] [--no-insitu]"
      call MPI_Abort(MPI_COMM_WORLD, 2)
   end if
   call get_command_argument(1, config)
   k = 0
   i = 1
   do while (i < nargs)
      i = i + 1
      call get_command_argument(i, arg)
      if (trim(arg) == "--no-insitu") then
         use_insitu = .false.
      else if (trim(arg) == "--restart") then
         restart = .true.
      else if (trim(arg) == "--checkpoint-every") then
         i = i + 1
         call get_command_argument(i, arg)
         read (arg, *) ckevery
      else
         k = k + 1
         select case (k)
         case (1); read (arg, *) nx
         case (2); read (arg, *) ny
         case (3); read (arg, *) nsteps
         end select
      end if
   end do

   ! 2-D Cartesian decomposition; dims(1) splits x, dims(2) splits y.
   dims = 0
   call MPI_Dims_create(nprocs, 2, dims)
   call MPI_Cart_create(MPI_COMM_WORLD, 2, dims, [.false., .false.], .false., cart)
   call MPI_Comm_rank(cart, rank)
   call MPI_Cart_coords(cart, rank, 2, coords)
   call MPI_Cart_shift(cart, 0, 1, west, east)
   call MPI_Cart_shift(cart, 1, 1, south, north)
   call block(nx, dims(1), coords(1), x0, nxl)
   call block(ny, dims(2), coords(2), y0, nyl)

   allocate (ta(0:nxl + 1, 0:nyl + 1), tb(0:nxl + 1, 0:nyl + 1))
   allocate (sendbuf(nyl), recvbuf(nyl))
   ta = boundary
   tb = boundary
   do j = 1, nyl
      do i = 1, nxl
         x = (x0 + i - 1 + 0.5d0)/nx
         y = (y0 + j - 1 + 0.5d0)/ny
         ta(i, j) = boundary + 40d0*exp(-((x - 0.35d0)**2 + (y - 0.6d0)**2)/0.01d0) &
                    + 10d0*sin(2*pi*x)*cos(pi*y)
      end do
   end do
   ! relative cell areas on a latitude grid, for area-weighted statistics
   allocate (area(nxl, nyl))
   do j = 1, nyl
      area(:, j) = cos((-90d0 + 180d0*(y0 + j - 1 + 0.5d0)/ny)*pi/180d0)
   end do
   t(0:, 0:) => ta
   tn(0:, 0:) => tb
   if (restart) then
      call load_restart(first)
      first = first + 1
   end if

   ! --- insitu: four calls -------------------------------------------------
   if (use_insitu) then
      ! the model's own Cartesian communicator, as real models pass it (and
      ! under MPI_Init's MPI_THREAD_SINGLE: the conditions of docs/mpiio.md)
      if (restart) then
         call insitu_init(cart, trim(config), restart_step=first - 1)
      else
         call insitu_init(cart, trim(config))
      end if
      call insitu_declare("T", t, global_shape=[nx, ny], offset=[x0, y0], halo=[1, 1])
      call insitu_declare("area", area, global_shape=[nx, ny], offset=[x0, y0])
   end if

   ! Time the steady state: the first steps include insitu's binding and
   ! numba's cache load (start-up, reported separately by the benchmarks).
   nwarm = max(1, min(10, nsteps/10))
   wtime = MPI_Wtime()
   do step = first, nsteps
      if (step == nwarm + 1) wtime = MPI_Wtime()
      call exchange(t)
      do j = 1, nyl
         do i = 1, nxl
            tn(i, j) = t(i, j) + alpha*(t(i - 1, j) + t(i + 1, j) + t(i, j - 1) &
                                        + t(i, j + 1) - 4d0*t(i, j))
         end do
      end do
      tmp => t
      t => tn
      tn => tmp
      if (use_insitu) then
         call insitu_expose("T", t)       ! the buffers swapped: say where T is now
         call insitu_step(step, step*dt)
      end if
      if (ckevery > 0) then
         if (mod(step, ckevery) == 0) then
            ! insitu's state first, then the model's: killed in between, the
            ! job restarts from the previous restart file, whose checkpoint
            ! insitu still keeps (output.keep_checkpoints >= 2)
            if (use_insitu) call insitu_checkpoint(step)
            call save_restart(step)
         end if
      end if
   end do
   wtime = MPI_Wtime() - wtime

   if (use_insitu) call insitu_finalize()
   if (rank == 0) write (*, '(a,i0,a,i0,a,i0,a,f10.6,a)') "heat2d: ", nx, "x", ny, &
      " cells, ", nsteps, " steps, ", wtime/max(nsteps - nwarm, 1), " s/step"
   call MPI_Comm_free(cart)
   call MPI_Finalize()

contains

   subroutine restart_name(name)
      character(len=*), intent(out) :: name
      write (name, '(a,i0)') "heat2d-restart.", rank
   end subroutine

   !> This rank's interior and the step, under a temporary name, renamed
   !> once written (a job killed while saving keeps the previous file).
   subroutine save_restart(s)
      integer, intent(in) :: s
      character(len=64) :: name
      integer :: u
      call restart_name(name)
      open (newunit=u, file=trim(name)//".tmp", form="unformatted", access="stream", &
            status="replace", action="write")
      write (u) nprocs, nx, ny, s
      write (u) t(1:nxl, 1:nyl)
      flush (u)
      close (u)
      call rename(trim(name)//".tmp", trim(name))
      call MPI_Barrier(cart)
   end subroutine

   subroutine load_restart(s)
      integer, intent(out) :: s
      character(len=64) :: name
      integer :: u, ios, p, mx, my
      logical :: there
      call restart_name(name)
      inquire (file=trim(name), exist=there)
      if (.not. there) then
         write (error_unit, '(a,a,a)') "heat2d: --restart: no model restart file ", trim(name), &
            " (written by a run with --checkpoint-every)"
         call MPI_Abort(MPI_COMM_WORLD, 2)
      end if
      open (newunit=u, file=trim(name), form="unformatted", access="stream", status="old", &
            action="read", iostat=ios)
      read (u) p, mx, my, s
      if (p /= nprocs .or. mx /= nx .or. my /= ny) then
         write (error_unit, '(a,i0,a,i0,a,i0,a)') "heat2d: --restart: the restart file was "// &
            "written by ", p, " ranks on ", mx, "x", my, "; run with the same ranks and grid"
         call MPI_Abort(MPI_COMM_WORLD, 2)
      end if
      read (u) t(1:nxl, 1:nyl)
      close (u)
   end subroutine

   !> Block distribution: the first mod(n, p) blocks get one extra point.
   subroutine block(n, p, c, start, size)
      integer, intent(in) :: n, p, c
      integer, intent(out) :: start, size
      size = n/p
      if (c < mod(n, p)) size = size + 1
      start = c*(n/p) + min(c, mod(n, p))
   end subroutine

   subroutine exchange(a)
      real(8), intent(inout) :: a(0:, 0:)
      ! y neighbours: whole rows (contiguous), halo columns included
      call MPI_Sendrecv(a(:, 1), nxl + 2, MPI_DOUBLE_PRECISION, south, 1, &
                        a(:, nyl + 1), nxl + 2, MPI_DOUBLE_PRECISION, north, 1, cart, MPI_STATUS_IGNORE)
      call MPI_Sendrecv(a(:, nyl), nxl + 2, MPI_DOUBLE_PRECISION, north, 2, &
                        a(:, 0), nxl + 2, MPI_DOUBLE_PRECISION, south, 2, cart, MPI_STATUS_IGNORE)
      ! x neighbours: strided columns through contiguous buffers
      sendbuf = a(1, 1:nyl)
      call MPI_Sendrecv(sendbuf, nyl, MPI_DOUBLE_PRECISION, west, 3, &
                        recvbuf, nyl, MPI_DOUBLE_PRECISION, east, 3, cart, MPI_STATUS_IGNORE)
      if (east /= MPI_PROC_NULL) a(nxl + 1, 1:nyl) = recvbuf
      sendbuf = a(nxl, 1:nyl)
      call MPI_Sendrecv(sendbuf, nyl, MPI_DOUBLE_PRECISION, east, 4, &
                        recvbuf, nyl, MPI_DOUBLE_PRECISION, west, 4, cart, MPI_STATUS_IGNORE)
      if (west /= MPI_PROC_NULL) a(0, 1:nyl) = recvbuf
   end subroutine

end program heat2d
