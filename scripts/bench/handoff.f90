!> Handoff and start-up cost seen from a Fortran host (driven by handoff.py
!> and startup.py).
!> usage: handoff CONFIG N ITERS   (N elements per rank, real(8))
!> The config's analysis is due at step 10**9 only, so every other step is
!> idle.  Prints one RESULT line (rank 0) with the slowest rank's figures:
!>   n nranks init_s declare_s first_step_s expose_us step_us swap_step_us
!>   age_init_s age_first_s cpu_init_s cpu_first_s
!> where age_* is the time from this process's start (the kernel's start
!> time, 10 ms resolution) to the end of insitu_init and of the first due
!> step, and cpu_* the CPU time the process used by then (user + system,
!> 10 ms resolution).  With ITERS = 0 the loops are skipped (start-up only).
program handoff
   use, intrinsic :: iso_c_binding, only: c_int, c_int64_t, c_long
   use mpi_f08
   use insitu
   implicit none
   type, bind(C) :: timespec
      integer(c_long) :: tv_sec, tv_nsec
   end type
   interface
      integer(c_int) function clock_gettime(clk, ts) bind(C, name="clock_gettime")
         import :: c_int, timespec
         integer(c_int), value :: clk
         type(timespec), intent(out) :: ts
      end function
      integer(c_long) function sysconf(name) bind(C, name="sysconf")
         import :: c_int, c_long
         integer(c_int), value :: name
      end function
   end interface
   character(len=1024) :: config, arg
   integer :: n, iters, i, rank, nprocs
   integer(c_int64_t) :: every, step
   real(8), allocatable, target :: a(:), b(:)
   real(8) :: t0, t(10), tmax(10), cpu

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   call get_command_argument(1, config)
   call get_command_argument(2, arg); read (arg, *) n
   call get_command_argument(3, arg); read (arg, *) iters
   every = 1000000000_c_int64_t          ! the config's `every`: steps below it are not due
   allocate (a(n), b(n))
   a = 1d0; b = 2d0
   t = 0

   t0 = MPI_Wtime()
   call insitu_init(MPI_COMM_WORLD, trim(config))
   t(1) = MPI_Wtime() - t0
   t(7) = process_age(cpu)
   t(9) = cpu
   t0 = MPI_Wtime()
   call insitu_declare("T", a, global_shape=[n*nprocs], offset=[n*rank])
   t(2) = MPI_Wtime() - t0
   t0 = MPI_Wtime()
   call insitu_step(every, 0d0)          ! due: binds, loads the kernels, writes
   t(3) = MPI_Wtime() - t0
   t(8) = process_age(cpu)
   t(10) = cpu

   if (iters > 0) then
      call MPI_Barrier(MPI_COMM_WORLD)
      t0 = MPI_Wtime()
      do i = 1, iters
         call insitu_expose("T", a)
      end do
      t(4) = (MPI_Wtime() - t0)/iters

      step = every
      call MPI_Barrier(MPI_COMM_WORLD)
      t0 = MPI_Wtime()
      do i = 1, iters
         step = step + 1
         call insitu_step(step, 0d0)     ! nothing due
      end do
      t(5) = (MPI_Wtime() - t0)/iters

      call MPI_Barrier(MPI_COMM_WORLD)
      t0 = MPI_Wtime()
      do i = 1, iters
         step = step + 1
         if (mod(i, 2) == 0) then
            call insitu_expose("T", a)
         else
            call insitu_expose("T", b)
         end if
         call insitu_step(step, 0d0)     ! the buffer moved; nothing due
      end do
      t(6) = (MPI_Wtime() - t0)/iters
   end if

   call insitu_finalize()
   call MPI_Allreduce(t, tmax, 10, MPI_DOUBLE_PRECISION, MPI_MAX, MPI_COMM_WORLD)
   if (rank == 0) write (*, '(a,i0,1x,i0,10(1x,es12.5))') "RESULT ", n, nprocs, tmax(1:3), &
      tmax(4:6)*1d6, tmax(7:10)
   call MPI_Finalize()

contains

   !> Seconds since this process started: CLOCK_BOOTTIME now minus the
   !> start time in /proc/self/stat (field 22, in clock ticks since boot);
   !> `cpu`: the CPU seconds it used so far (fields 14 and 15).
   real(8) function process_age(cpu)
      real(8), intent(out) :: cpu
      character(len=4096) :: line
      character :: state
      integer(8) :: f(19)
      integer :: u, p, ios
      type(timespec) :: ts
      process_age = -1d0
      cpu = -1d0
      open (newunit=u, file="/proc/self/stat", action="read", iostat=ios)
      if (ios /= 0) return
      read (u, '(a)', iostat=ios) line
      close (u)
      if (ios /= 0) return
      p = index(line, ")", back=.true.)
      read (line(p + 1:), *, iostat=ios) state, f
      if (ios /= 0) return
      if (clock_gettime(7_c_int, ts) /= 0) return   ! CLOCK_BOOTTIME
      process_age = real(ts%tv_sec, 8) + real(ts%tv_nsec, 8)*1d-9 - &
                    real(f(19), 8)/real(sysconf(2_c_int), 8)   ! _SC_CLK_TCK
      cpu = real(f(11) + f(12), 8)/real(sysconf(2_c_int), 8)
   end function

end program handoff
