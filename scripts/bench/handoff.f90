!> Handoff and start-up cost seen from a Fortran host (driven by handoff.py).
!> usage: handoff CONFIG N ITERS   (N elements per rank, real(8))
program handoff
   use, intrinsic :: iso_c_binding, only: c_int64_t
   use mpi_f08
   use insitu
   implicit none
   character(len=1024) :: config, arg
   integer :: n, iters, i, rank, nprocs
   integer(c_int64_t) :: every, step
   real(8), allocatable, target :: a(:), b(:)
   real(8) :: t0, t_init, t_declare, t_first, t_expose, t_step, t_swap

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   call get_command_argument(1, config)
   call get_command_argument(2, arg); read (arg, *) n
   call get_command_argument(3, arg); read (arg, *) iters
   every = 1000000000_c_int64_t          ! the config's `every`: steps below it are not due
   allocate (a(n), b(n))
   a = 1d0; b = 2d0

   t0 = MPI_Wtime()
   call insitu_init(MPI_COMM_WORLD, trim(config))
   t_init = MPI_Wtime() - t0
   t0 = MPI_Wtime()
   call insitu_declare("T", a, global_shape=[n*nprocs], offset=[n*rank])
   t_declare = MPI_Wtime() - t0
   t0 = MPI_Wtime()
   call insitu_step(every, 0d0)          ! due: binds, compiles or loads kernels, writes
   t_first = MPI_Wtime() - t0

   t0 = MPI_Wtime()
   do i = 1, iters
      call insitu_expose("T", a)
   end do
   t_expose = (MPI_Wtime() - t0)/iters

   step = every
   t0 = MPI_Wtime()
   do i = 1, iters
      step = step + 1
      call insitu_step(step, 0d0)        ! not due: one crossing, same pointer
   end do
   t_step = (MPI_Wtime() - t0)/iters

   t0 = MPI_Wtime()
   do i = 1, iters
      step = step + 1
      if (mod(i, 2) == 0) then
         call insitu_expose("T", a)
      else
         call insitu_expose("T", b)
      end if
      call insitu_step(step, 0d0)        ! the pointer moved: the view is rebuilt
   end do
   t_swap = (MPI_Wtime() - t0)/iters

   call insitu_finalize()
   if (rank == 0) write (*, '(a,i0,6(1x,es12.5))') "RESULT ", n, t_init, t_declare, t_first, &
      t_expose*1d6, t_step*1d6, t_swap*1d6
   call MPI_Finalize()
end program handoff
