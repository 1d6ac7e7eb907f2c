!> Every dtype and rank through the Fortran generic interface.  Each rank
!> owns a block of the LAST dimension; values are a function of the global
!> index, so tests/test_end_to_end.py can rebuild the whole fields in numpy.
!> usage: mpirun -n N ./dtypes_check CONFIG
program dtypes_check
   use, intrinsic :: iso_c_binding, only: c_float, c_double, c_int32_t, c_int64_t
   use mpi_f08
   use insitu
   implicit none
   integer, parameter :: n1 = 11, nx = 5, ny = 7, nz = 3
   character(len=1024) :: config
   integer :: rank, nprocs, i, j, k, g, o1, m1, oy, my, oz, mz
   real(c_float), allocatable, target :: a(:)
   integer(c_int32_t), allocatable, target :: b(:, :)
   integer(c_int64_t), allocatable, target :: c(:, :, :)
   real(c_double), allocatable, target :: d(:, :, :)
   real(c_double), allocatable, target :: e(:, :, :, :)
   integer :: l

   call MPI_Init()
   call MPI_Comm_rank(MPI_COMM_WORLD, rank)
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   call get_command_argument(1, config)
   call block(n1*nprocs, nprocs, rank, o1, m1)
   call block(ny*nprocs + 1, nprocs, rank, oy, my)
   call block(nz*nprocs + 2, nprocs, rank, oz, mz)

   ! halos: a has 2 cells each side, b 1, c none, d 1 in every dimension
   allocate (a(-1:m1 + 2), b(0:nx + 1, 0:my + 1), c(nx, ny, mz), d(0:nx + 1, 0:ny + 1, 0:mz + 1))
   a = -1e30; b = -999999; d = -1d30
   do i = 1, m1
      g = o1 + i - 1
      a(i) = real(g, c_float)*0.5 + 1.25
   end do
   do j = 1, my
      do i = 1, nx
         b(i, j) = (i - 1) + 100*(oy + j - 1)
      end do
   end do
   do k = 1, mz
      do j = 1, ny
         do i = 1, nx
            c(i, j, k) = int(i - 1, c_int64_t) + 10_c_int64_t*(j - 1) + 1000000000000_c_int64_t*(oz + k - 1)
            d(i, j, k) = sin(0.1d0*(i - 1)) + cos(0.2d0*(j - 1)) + 0.01d0*(oz + k - 1)
         end do
      end do
   end do

   ! e: rank 4, a halo of 1 in every dimension, split along its last one
   allocate (e(0:nx + 1, 0:3, 0:ny + 1, 0:mz + 1))
   e = -1d30
   do l = 1, mz
      do k = 1, ny
         do j = 1, 2
            do i = 1, nx
               e(i, j, k, l) = (i - 1) + 10d0*(j - 1) + 100d0*(k - 1) + 1000d0*(oz + l - 1)
            end do
         end do
      end do
   end do

   call insitu_init(MPI_COMM_WORLD, trim(config))
   call insitu_declare("a", a, global_shape=[n1*nprocs], offset=[o1], halo=[2])
   call insitu_declare("b", b, global_shape=[nx, ny*nprocs + 1], offset=[0, oy], halo=[1, 1])
   call insitu_declare("c", c, global_shape=[nx, ny, nz*nprocs + 2], offset=[0, 0, oz])
   call insitu_declare("d", d, global_shape=[nx, ny, nz*nprocs + 2], offset=[0, 0, oz], halo=[1, 1, 1])
   call insitu_declare("e", e, global_shape=[nx, 2, ny, nz*nprocs + 2], offset=[0, 0, 0, oz], &
                       halo=[1, 1, 1, 1])
   call insitu_step(1_c_int64_t, 1d0)
   call insitu_finalize()
   if (rank == 0) write (*, '(a)') "DTYPES-DONE"
   call MPI_Finalize()

contains
   subroutine block(n, p, r, start, size)
      integer, intent(in) :: n, p, r
      integer, intent(out) :: start, size
      size = n/p
      if (r < mod(n, p)) size = size + 1
      start = r*(n/p) + min(r, mod(n, p))
   end subroutine
end program dtypes_check
