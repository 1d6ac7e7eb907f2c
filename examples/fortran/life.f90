!> Conway's Game of Life on a torus: integer fields, 1-cell halos on a 2-D
!> periodic Cartesian communicator, analysed in situ by insitu.  insitu's
!> original demonstration, in Fortran.
!>
!> usage: mpirun -n 4 ./life life.yaml [NX NY NSTEPS]
program life
   use, intrinsic :: iso_c_binding, only: c_int32_t
   use mpi_f08
   use insitu
   implicit none
   integer :: nx = 96, ny = 64, nsteps = 50
   character(len=1024) :: config, arg
   type(MPI_Comm) :: cart
   integer :: nprocs, rank, dims(2), coords(2), west, east, south, north
   integer :: x0, y0, nxl, nyl, i, j, step, n, k
   integer(c_int32_t), allocatable, target :: ga(:, :), gb(:, :)
   integer(c_int32_t), pointer :: a(:, :), b(:, :), tmp(:, :)
   integer(c_int32_t), allocatable :: sendbuf(:), recvbuf(:)

   call MPI_Init()
   call MPI_Comm_size(MPI_COMM_WORLD, nprocs)
   call get_command_argument(1, config)
   do k = 2, min(command_argument_count(), 4)
      call get_command_argument(k, arg)
      select case (k)
      case (2); read (arg, *) nx
      case (3); read (arg, *) ny
      case (4); read (arg, *) nsteps
      end select
   end do

   dims = 0
   call MPI_Dims_create(nprocs, 2, dims)
   call MPI_Cart_create(MPI_COMM_WORLD, 2, dims, [.true., .true.], .false., cart)
   call MPI_Comm_rank(cart, rank)
   call MPI_Cart_coords(cart, rank, 2, coords)
   call MPI_Cart_shift(cart, 0, 1, west, east)
   call MPI_Cart_shift(cart, 1, 1, south, north)
   call block(nx, dims(1), coords(1), x0, nxl)
   call block(ny, dims(2), coords(2), y0, nyl)
   allocate (ga(0:nxl + 1, 0:nyl + 1), gb(0:nxl + 1, 0:nyl + 1), sendbuf(nyl), recvbuf(nyl))
   ga = 0
   gb = 0
   do j = 1, nyl
      do i = 1, nxl
         ga(i, j) = merge(1, 0, initial(x0 + i - 1, y0 + j - 1))
      end do
   end do
   a(0:, 0:) => ga
   b(0:, 0:) => gb

   call insitu_init(cart, trim(config))
   call insitu_declare("alive", a, global_shape=[nx, ny], offset=[x0, y0], halo=[1, 1])
   do step = 1, nsteps
      call exchange(a)
      do j = 1, nyl
         do i = 1, nxl
            n = a(i - 1, j - 1) + a(i, j - 1) + a(i + 1, j - 1) + a(i - 1, j) + a(i + 1, j) &
                + a(i - 1, j + 1) + a(i, j + 1) + a(i + 1, j + 1)
            b(i, j) = merge(1, 0, n == 3 .or. (a(i, j) == 1 .and. n == 2))
         end do
      end do
      tmp => a
      a => b
      b => tmp
      call insitu_expose("alive", a)
      call insitu_step(step, real(step, 8))
   end do
   call insitu_finalize()
   if (rank == 0) write (*, '(a,i0,a,i0,a,i0,a)') "life: ", nx, "x", ny, " cells, ", nsteps, " steps"
   call MPI_Comm_free(cart)
   call MPI_Finalize()

contains

   !> The initial soup, a function of the global (0-based) cell index only.
   logical function initial(gi, gj)
      integer, intent(in) :: gi, gj
      initial = mod(7*gi + 13*gj + mod(gi*gj, 17), 10) < 3
   end function

   subroutine block(n, p, c, start, size)
      integer, intent(in) :: n, p, c
      integer, intent(out) :: start, size
      size = n/p
      if (c < mod(n, p)) size = size + 1
      start = c*(n/p) + min(c, mod(n, p))
   end subroutine

   !> Halos from the neighbours on the torus: columns (x), then whole rows
   !> (y) including the halo columns, so the corners arrive too.
   subroutine exchange(f)
      integer(c_int32_t), intent(inout) :: f(0:, 0:)
      sendbuf = f(1, 1:nyl)
      call MPI_Sendrecv(sendbuf, nyl, MPI_INTEGER4, west, 1, recvbuf, nyl, MPI_INTEGER4, east, 1, &
                        cart, MPI_STATUS_IGNORE)
      f(nxl + 1, 1:nyl) = recvbuf
      sendbuf = f(nxl, 1:nyl)
      call MPI_Sendrecv(sendbuf, nyl, MPI_INTEGER4, east, 2, recvbuf, nyl, MPI_INTEGER4, west, 2, &
                        cart, MPI_STATUS_IGNORE)
      f(0, 1:nyl) = recvbuf
      call MPI_Sendrecv(f(:, 1), nxl + 2, MPI_INTEGER4, south, 3, f(:, nyl + 1), nxl + 2, &
                        MPI_INTEGER4, north, 3, cart, MPI_STATUS_IGNORE)
      call MPI_Sendrecv(f(:, nyl), nxl + 2, MPI_INTEGER4, north, 4, f(:, 0), nxl + 2, &
                        MPI_INTEGER4, south, 4, cart, MPI_STATUS_IGNORE)
   end subroutine

end program life
