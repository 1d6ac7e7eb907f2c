!> insitu: Fortran 2008 interface to libinsitu (the C ABI in insitu.h).
!>
!> Two layers, as in PDI: private bind(C) interfaces that mirror insitu.h
!> exactly, and a public layer that takes Fortran arrays and strings.
!>
!> Every public procedure has an optional `ierr`.  If it is present, it
!> receives the status (0 = success) and the caller decides; the message is
!> in insitu_last_error().  If it is ABSENT and the call fails, the message
!> is printed and the whole job ends with MPI_Abort, because one rank that
!> stops alone leaves the others waiting forever in a collective.
!>
!> Typical use (see examples/fortran/heat2d.f90):
!>
!>     use insitu
!>     call insitu_init(comm, "heat2d.yaml")
!>     call insitu_declare("T", T, global_shape=[nx, ny], offset=[i0, j0], halo=[1, 1])
!>     do step = 1, nsteps
!>        ...
!>        call insitu_expose("T", T)          ! only if T's memory moved
!>        call insitu_step(step, time)
!>     end do
!>     call insitu_finalize()
module insitu
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use mpi_f08, only: MPI_Comm, MPI_Abort, MPI_COMM_WORLD
   implicit none
   private

   public :: insitu_init, insitu_declare, insitu_expose, insitu_step, insitu_checkpoint, &
             insitu_finalize
   public :: insitu_last_error

   integer, parameter, public :: INSITU_OK = 0, INSITU_ERR = 1, INSITU_ERR_PYTHON = 2, &
                                 INSITU_ERR_STATE = 3, INSITU_ERR_ARGUMENT = 4
   integer(c_int), parameter :: REAL32 = 1, REAL64 = 2, INT32 = 3, INT64 = 4
   integer(c_int), parameter :: ORDER_FORTRAN = 1

   ! ---- layer 1: the C ABI, private --------------------------------------
   interface
      integer(c_int) function c_init(fcomm, config_path) bind(C, name="insitu_init")
         import :: c_int, c_char
         integer(c_int), value :: fcomm
         character(kind=c_char), dimension(*), intent(in) :: config_path
      end function
      integer(c_int) function c_declare_field(name, dtype, ndim, global_shape, offset, &
            local_shape, halo_lo, halo_hi, order) bind(C, name="insitu_declare_field")
         import :: c_int, c_char, c_int64_t
         character(kind=c_char), dimension(*), intent(in) :: name
         integer(c_int), value :: dtype, ndim, order
         integer(c_int64_t), dimension(*), intent(in) :: global_shape, offset, local_shape, &
                                                         halo_lo, halo_hi
      end function
      integer(c_int) function c_expose(name, data, dtype, ndim, shape) bind(C, name="insitu_expose")
         import :: c_int, c_char, c_ptr, c_int64_t
         character(kind=c_char), dimension(*), intent(in) :: name
         type(c_ptr), value :: data
         integer(c_int), value :: dtype, ndim
         integer(c_int64_t), dimension(*), intent(in) :: shape
      end function
      subroutine c_set_error(msg) bind(C, name="insitu_set_error")
         import :: c_char
         character(kind=c_char), dimension(*), intent(in) :: msg
      end subroutine
      integer(c_int) function c_step(step, time) bind(C, name="insitu_step")
         import :: c_int, c_int64_t, c_double
         integer(c_int64_t), value :: step
         real(c_double), value :: time
      end function
      integer(c_int) function c_init_restart(fcomm, config_path, restart_step) &
            bind(C, name="insitu_init_restart")
         import :: c_int, c_char, c_int64_t
         integer(c_int), value :: fcomm
         character(kind=c_char), dimension(*), intent(in) :: config_path
         integer(c_int64_t), value :: restart_step
      end function
      integer(c_int) function c_checkpoint(step) bind(C, name="insitu_checkpoint")
         import :: c_int, c_int64_t
         integer(c_int64_t), value :: step
      end function
      integer(c_int) function c_finalize() bind(C, name="insitu_finalize")
         import :: c_int
      end function
      type(c_ptr) function c_last_error() bind(C, name="insitu_last_error")
         import :: c_ptr
      end function
      integer(c_size_t) function c_strlen(s) bind(C, name="strlen")
         import :: c_size_t, c_ptr
         type(c_ptr), value :: s
      end function
   end interface

   ! ---- layer 2: the public Fortran interface ----------------------------
   interface insitu_init
      module procedure init_f08, init_handle
   end interface
   interface insitu_declare
      module procedure declare_r4, declare_r8, declare_i4, declare_i8
   end interface
   interface insitu_expose
      module procedure expose_r4, expose_r8, expose_i4, expose_i8
   end interface
   interface insitu_step
      module procedure step_i4, step_i8
   end interface
   interface insitu_checkpoint
      module procedure checkpoint_i4, checkpoint_i8
   end interface

contains

   !> Start the session on the model's communicator (mpi_f08).  Collective.
   !> With `restart_step`, go on from the output file's latest checkpoint
   !> at or before it (docs/restart.md); a negative value takes the latest.
   subroutine init_f08(comm, config_path, ierr, restart_step)
      type(MPI_Comm), intent(in) :: comm
      character(len=*), intent(in) :: config_path
      integer, optional, intent(out) :: ierr
      integer, optional, intent(in) :: restart_step
      call init_handle(comm%MPI_VAL, config_path, ierr, restart_step)
   end subroutine

   !> Start the session from an integer handle (`use mpi`).  Collective.
   subroutine init_handle(comm, config_path, ierr, restart_step)
      integer, intent(in) :: comm
      character(len=*), intent(in) :: config_path
      integer, optional, intent(out) :: ierr
      integer, optional, intent(in) :: restart_step
      if (present(restart_step)) then
         call check(c_init_restart(int(comm, c_int), cstr(config_path), &
                                   int(restart_step, c_int64_t)), "insitu_init", ierr)
      else
         call check(c_init(int(comm, c_int), cstr(config_path)), "insitu_init", ierr)
      end if
   end subroutine

   subroutine declare_r4(name, array, global_shape, offset, halo, halo_hi, ierr)
      character(len=*), intent(in) :: name
      real(c_float), dimension(..), target, intent(in) :: array
      integer, dimension(:), intent(in) :: global_shape, offset
      integer, dimension(:), optional, intent(in) :: halo, halo_hi
      integer, optional, intent(out) :: ierr
      call declare_any(name, REAL32, shape(array), global_shape, offset, halo, halo_hi, ierr)
      if (status_ok(ierr)) call expose_r4(name, array, ierr)
   end subroutine

   subroutine declare_r8(name, array, global_shape, offset, halo, halo_hi, ierr)
      character(len=*), intent(in) :: name
      real(c_double), dimension(..), target, intent(in) :: array
      integer, dimension(:), intent(in) :: global_shape, offset
      integer, dimension(:), optional, intent(in) :: halo, halo_hi
      integer, optional, intent(out) :: ierr
      call declare_any(name, REAL64, shape(array), global_shape, offset, halo, halo_hi, ierr)
      if (status_ok(ierr)) call expose_r8(name, array, ierr)
   end subroutine

   subroutine declare_i4(name, array, global_shape, offset, halo, halo_hi, ierr)
      character(len=*), intent(in) :: name
      integer(c_int32_t), dimension(..), target, intent(in) :: array
      integer, dimension(:), intent(in) :: global_shape, offset
      integer, dimension(:), optional, intent(in) :: halo, halo_hi
      integer, optional, intent(out) :: ierr
      call declare_any(name, INT32, shape(array), global_shape, offset, halo, halo_hi, ierr)
      if (status_ok(ierr)) call expose_i4(name, array, ierr)
   end subroutine

   subroutine declare_i8(name, array, global_shape, offset, halo, halo_hi, ierr)
      character(len=*), intent(in) :: name
      integer(c_int64_t), dimension(..), target, intent(in) :: array
      integer, dimension(:), intent(in) :: global_shape, offset
      integer, dimension(:), optional, intent(in) :: halo, halo_hi
      integer, optional, intent(out) :: ierr
      call declare_any(name, INT64, shape(array), global_shape, offset, halo, halo_hi, ierr)
      if (status_ok(ierr)) call expose_i8(name, array, ierr)
   end subroutine

   !> Declare a field (collective).  `halo` is the halo width on the low side
   !> of each dimension, and on the high side too unless `halo_hi` is given.
   !> `offset` counts the global points before this rank's first interior
   !> point (0-based), in the array's index order.
   subroutine declare_any(name, dtype, local_shape, global_shape, offset, halo, halo_hi, ierr)
      character(len=*), intent(in) :: name
      integer(c_int), intent(in) :: dtype
      integer, dimension(:), intent(in) :: local_shape, global_shape, offset
      integer, dimension(:), optional, intent(in) :: halo, halo_hi
      integer, optional, intent(out) :: ierr
      integer(c_int64_t), dimension(4) :: g, o, l, lo, hi
      integer :: nd
      character(len=32) :: counts
      nd = size(local_shape)
      g = 0; o = 0; l = 0; lo = 0; hi = 0
      if (nd < 1 .or. nd > 4) then
         call report(INSITU_ERR_ARGUMENT, "insitu_declare('"//trim(name)// &
                     "'): arrays of rank 1 to 4 are supported", ierr)
         return
      end if
      if (size(global_shape) /= nd .or. size(offset) /= nd) then
         write (counts, '(3(i0,a))') size(global_shape), " and ", size(offset), " for rank ", nd
         call report(INSITU_ERR_ARGUMENT, "insitu_declare('"//trim(name)// &
                     "'): global_shape and offset need one entry per dimension of the array; got "// &
                     trim(counts), ierr)
         return
      end if
      if (present(halo)) then
         if (size(halo) /= nd) then
            call report(INSITU_ERR_ARGUMENT, "insitu_declare('"//trim(name)// &
                        "'): halo needs one entry per dimension of the array", ierr)
            return
         end if
      end if
      if (present(halo_hi)) then
         if (size(halo_hi) /= nd) then
            call report(INSITU_ERR_ARGUMENT, "insitu_declare('"//trim(name)// &
                        "'): halo_hi needs one entry per dimension of the array", ierr)
            return
         end if
      end if
      g(1:nd) = global_shape
      o(1:nd) = offset
      l(1:nd) = local_shape
      if (present(halo)) then
         lo(1:nd) = halo
         hi(1:nd) = halo
      end if
      if (present(halo_hi)) hi(1:nd) = halo_hi
      call check(c_declare_field(cstr(name), dtype, int(nd, c_int), g, o, l, lo, hi, &
                                 ORDER_FORTRAN), "insitu_declare", ierr)
   end subroutine

   subroutine expose_r4(name, array, ierr)
      character(len=*), intent(in) :: name
      real(c_float), dimension(..), target, intent(in) :: array
      integer, optional, intent(out) :: ierr
      type(c_ptr) :: p
      p = c_null_ptr
      select rank (array)
      rank (1); if (size(array) > 0) p = c_loc(array(1))
      rank (2); if (size(array) > 0) p = c_loc(array(1, 1))
      rank (3); if (size(array) > 0) p = c_loc(array(1, 1, 1))
      rank (4); if (size(array) > 0) p = c_loc(array(1, 1, 1, 1))
      end select
      call expose_ptr(name, p, is_contiguous(array), REAL32, shape(array), ierr)
   end subroutine

   subroutine expose_r8(name, array, ierr)
      character(len=*), intent(in) :: name
      real(c_double), dimension(..), target, intent(in) :: array
      integer, optional, intent(out) :: ierr
      type(c_ptr) :: p
      p = c_null_ptr
      select rank (array)
      rank (1); if (size(array) > 0) p = c_loc(array(1))
      rank (2); if (size(array) > 0) p = c_loc(array(1, 1))
      rank (3); if (size(array) > 0) p = c_loc(array(1, 1, 1))
      rank (4); if (size(array) > 0) p = c_loc(array(1, 1, 1, 1))
      end select
      call expose_ptr(name, p, is_contiguous(array), REAL64, shape(array), ierr)
   end subroutine

   subroutine expose_i4(name, array, ierr)
      character(len=*), intent(in) :: name
      integer(c_int32_t), dimension(..), target, intent(in) :: array
      integer, optional, intent(out) :: ierr
      type(c_ptr) :: p
      p = c_null_ptr
      select rank (array)
      rank (1); if (size(array) > 0) p = c_loc(array(1))
      rank (2); if (size(array) > 0) p = c_loc(array(1, 1))
      rank (3); if (size(array) > 0) p = c_loc(array(1, 1, 1))
      rank (4); if (size(array) > 0) p = c_loc(array(1, 1, 1, 1))
      end select
      call expose_ptr(name, p, is_contiguous(array), INT32, shape(array), ierr)
   end subroutine

   subroutine expose_i8(name, array, ierr)
      character(len=*), intent(in) :: name
      integer(c_int64_t), dimension(..), target, intent(in) :: array
      integer, optional, intent(out) :: ierr
      type(c_ptr) :: p
      p = c_null_ptr
      select rank (array)
      rank (1); if (size(array) > 0) p = c_loc(array(1))
      rank (2); if (size(array) > 0) p = c_loc(array(1, 1))
      rank (3); if (size(array) > 0) p = c_loc(array(1, 1, 1))
      rank (4); if (size(array) > 0) p = c_loc(array(1, 1, 1, 1))
      end select
      call expose_ptr(name, p, is_contiguous(array), INT64, shape(array), ierr)
   end subroutine

   !> Record the field's current address (local, no Python call).  The
   !> element kind and the shape go along, so libinsitu refuses an array of
   !> another kind or size than the declaration instead of reading garbage.
   subroutine expose_ptr(name, p, contiguous, dtype, array_shape, ierr)
      character(len=*), intent(in) :: name
      type(c_ptr), intent(in) :: p
      logical, intent(in) :: contiguous
      integer(c_int), intent(in) :: dtype
      integer, dimension(:), intent(in) :: array_shape
      integer, optional, intent(out) :: ierr
      integer(c_int64_t), dimension(4) :: shp
      if (.not. contiguous) then
         call report(INSITU_ERR_ARGUMENT, "insitu_expose('"//trim(name)// &
                     "'): the array is not contiguous; pass the whole array, halos included", ierr)
         return
      end if
      if (size(array_shape) > 4) then
         call report(INSITU_ERR_ARGUMENT, "insitu_expose('"//trim(name)// &
                     "'): arrays of rank 1 to 4 are supported", ierr)
         return
      end if
      shp = 0
      shp(1:size(array_shape)) = array_shape
      call check(c_expose(cstr(name), p, dtype, int(size(array_shape), c_int), shp), &
                 "insitu_expose", ierr)
   end subroutine

   !> The model reached `step` at model time `time` (collective).
   subroutine step_i4(step, time, ierr)
      integer(c_int32_t), intent(in) :: step
      real(c_double), intent(in) :: time
      integer, optional, intent(out) :: ierr
      call check(c_step(int(step, c_int64_t), time), "insitu_step", ierr)
   end subroutine

   subroutine step_i8(step, time, ierr)
      integer(c_int64_t), intent(in) :: step
      real(c_double), intent(in) :: time
      integer, optional, intent(out) :: ierr
      call check(c_step(step, time), "insitu_step", ierr)
   end subroutine

   !> Store the analysis state at `step` in the output file (collective);
   !> call it with the model's own restart file (docs/restart.md).
   subroutine checkpoint_i4(step, ierr)
      integer(c_int32_t), intent(in) :: step
      integer, optional, intent(out) :: ierr
      call check(c_checkpoint(int(step, c_int64_t)), "insitu_checkpoint", ierr)
   end subroutine

   subroutine checkpoint_i8(step, ierr)
      integer(c_int64_t), intent(in) :: step
      integer, optional, intent(out) :: ierr
      call check(c_checkpoint(step), "insitu_checkpoint", ierr)
   end subroutine

   !> Close the output and free insitu's communicators (collective).
   !> Call it before MPI_Finalize.
   subroutine insitu_finalize(ierr)
      integer, optional, intent(out) :: ierr
      call check(c_finalize(), "insitu_finalize", ierr)
   end subroutine

   !> The message of the last failed call on this rank.
   function insitu_last_error() result(msg)
      character(len=:), allocatable :: msg
      type(c_ptr) :: p
      character(kind=c_char), pointer :: chars(:)
      integer :: n, i
      p = c_last_error()
      n = int(c_strlen(p))
      call c_f_pointer(p, chars, [n])
      allocate (character(len=n) :: msg)
      do i = 1, n
         msg(i:i) = chars(i)
      end do
   end function

   ! ---- helpers -----------------------------------------------------------
   function cstr(s) result(c)
      character(len=*), intent(in) :: s
      character(kind=c_char, len=len_trim(s) + 1) :: c
      c = trim(s)//c_null_char
   end function

   logical function status_ok(ierr)
      integer, optional, intent(in) :: ierr
      status_ok = .true.
      if (present(ierr)) status_ok = ierr == INSITU_OK
   end function

   subroutine check(status, where, ierr)
      integer(c_int), intent(in) :: status
      character(len=*), intent(in) :: where
      integer, optional, intent(out) :: ierr
      if (present(ierr)) then
         ierr = int(status)
      else if (status /= INSITU_OK) then
         call die(int(status), where//" failed: "//insitu_last_error())
      end if
   end subroutine

   !> A failure detected in Fortran (before the C call).  The message goes
   !> where every other failure's goes, so insitu_last_error() returns it
   !> with a nonzero ierr; the caller, holding ierr, decides what to print.
   subroutine report(status, msg, ierr)
      integer, intent(in) :: status
      character(len=*), intent(in) :: msg
      integer, optional, intent(out) :: ierr
      call c_set_error(cstr(msg))
      if (present(ierr)) then
         ierr = status
      else
         call die(status, msg)
      end if
   end subroutine

   subroutine die(status, msg)
      integer, intent(in) :: status
      character(len=*), intent(in) :: msg
      write (error_unit, '(a)') "insitu: "//msg
      write (error_unit, '(a)') "insitu: no ierr argument was given, so the job is aborted"
      flush (error_unit)
      call MPI_Abort(MPI_COMM_WORLD, max(status, 1))
   end subroutine

end module insitu
