/*
 * insitu.h -- the C ABI of libinsitu.  This header is the single source of
 * truth: the Fortran module (insitu.f90), the cffi build (build_libinsitu.py)
 * and docs/abi.md all follow it.
 *
 * Contract
 * --------
 * - Every function returns an int status: INSITU_OK (0) on success, a
 *   positive INSITU_ERR_* code on failure.  After a failure,
 *   insitu_last_error() gives a message naming what is wrong and where.
 * - The host owns MPI.  insitu never calls MPI_Init or MPI_Finalize; the host
 *   calls insitu_finalize() BEFORE MPI_Finalize.
 * - Calls marked COLLECTIVE must be made by every rank of the communicator
 *   passed to insitu_init, in the same order and with the same names.
 * - Index-array arguments (shapes, offsets, halos) are given in the order in
 *   which the model indexes the array: for Fortran T(x, y) that is (x, y).
 *   `order` says how that array is laid out in memory.
 * - libinsitu embeds a Python interpreter.  It is started on the first call
 *   (normally insitu_init) with the venv libinsitu was built for; the
 *   environment variable INSITU_PYTHON overrides that interpreter path.
 *   If Python cannot start or cannot import insitu, the call returns
 *   INSITU_ERR_PYTHON and never reads as success.
 */
#ifndef INSITU_H
#define INSITU_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define INSITU_ABI_VERSION 3 /* 2: insitu_expose takes dtype and shape; rank 4; insitu_set_error;
                                 3: insitu_checkpoint, insitu_init_restart */

/* status codes */
#define INSITU_OK            0
#define INSITU_ERR           1 /* a Python exception: bad config, bad field, analysis error, ... */
#define INSITU_ERR_PYTHON    2 /* the embedded interpreter failed to start or import insitu */
#define INSITU_ERR_STATE     3 /* call out of order: before init, after finalize, ... */
#define INSITU_ERR_ARGUMENT  4 /* rejected in C before reaching Python: NULL pointer, unknown field */

/* dtypes */
#define INSITU_REAL32 1
#define INSITU_REAL64 2
#define INSITU_INT32  3
#define INSITU_INT64  4

/* memory order of a field's local array */
#define INSITU_ORDER_C       0 /* row-major: last index varies fastest */
#define INSITU_ORDER_FORTRAN 1 /* column-major: first index varies fastest */

/* Largest field rank and number of fields one session can declare. */
#define INSITU_MAX_NDIM   4
#define INSITU_MAX_FIELDS 256
#define INSITU_MAX_NAME   64

/*
 * insitu_init -- COLLECTIVE.  Start a session.
 *   fcomm        Fortran handle of the model's communicator (MPI_Comm_c2f in
 *                C; comm%MPI_VAL with mpi_f08; the integer with `use mpi`).
 *                insitu duplicates it, so its traffic never mixes with the
 *                model's.
 *   config_path  NUL-terminated path of the YAML config.
 * Returns INSITU_ERR_STATE if a session is already open.
 */
int insitu_init(int fcomm, const char *config_path);

/*
 * insitu_init_restart -- COLLECTIVE.  insitu_init, going on from a
 * checkpoint in the existing output file (docs/restart.md): the latest
 * checkpoint at or before `restart_step` (the step the model restarts
 * from), or the latest one when `restart_step` < 0.  The file is cut to the
 * checkpoint's rows and the analysis state restored; the model then steps
 * from restart_step + 1.  A missing or corrupt checkpoint, or a config that
 * changed (beyond new analyses, log_level and output settings), returns
 * INSITU_ERR with a message naming it.
 */
int insitu_init_restart(int fcomm, const char *config_path, int64_t restart_step);

/*
 * insitu_declare_field -- COLLECTIVE.  Describe one field of this rank.
 *   name          NUL-terminated, at most INSITU_MAX_NAME-1 characters.
 *   dtype         INSITU_REAL32 / REAL64 / INT32 / INT64.
 *   ndim          1 to INSITU_MAX_NDIM.
 *   global_shape  [ndim] interior size of the whole domain.
 *   offset        [ndim] 0-based global index of this rank's first interior
 *                 point.
 *   local_shape   [ndim] shape of this rank's array INCLUDING halos.
 *   halo_lo       [ndim] halo width before the interior in each dimension.
 *   halo_hi       [ndim] halo width after the interior in each dimension.
 *   order         INSITU_ORDER_C or INSITU_ORDER_FORTRAN.
 * The interior of this rank is local_shape - halo_lo - halo_hi.  The ranks'
 * interiors must tile the global shape exactly (no gap, no overlap); this is
 * checked collectively here.
 */
int insitu_declare_field(const char *name, int dtype, int ndim,
                         const int64_t *global_shape, const int64_t *offset,
                         const int64_t *local_shape, const int64_t *halo_lo,
                         const int64_t *halo_hi, int order);

/*
 * insitu_expose -- local, cheap (no Python call).  Record where a declared
 * field's data live now.  The memory must stay valid and unchanged in layout
 * until the next insitu_step returns.  A model that swaps buffers may call
 * this every step; at the next due step insitu takes each moved field's
 * zero-copy view from a cache kept by address (two swapped buffers are
 * both cached), and builds one only for an address it has not kept.
 *   dtype, ndim, shape  what the caller is passing: its element type and
 *                its local shape INCLUDING halos, in the same index order
 *                as at declare.  They must equal the declaration, or the
 *                call returns INSITU_ERR_ARGUMENT naming the field, the
 *                declared and the passed type or shape, and the rank.
 *                insitu never reads memory of a type or size other than
 *                the one declared.  (A few integer compares; no Python.)
 */
int insitu_expose(const char *name, const void *data, int dtype, int ndim,
                  const int64_t *shape);

/*
 * insitu_set_error -- local.  For language bindings (the Fortran module)
 * that detect a mistake before calling the C ABI: record `msg` so that
 * insitu_last_error() returns it, like any other failure's message.
 */
void insitu_set_error(const char *msg);

/*
 * insitu_step -- COLLECTIVE on due steps.  The model reached `step` at model
 * time `time`.  Every field used by an analysis due at this step must have
 * been exposed.  Runs the analyses due at this step and writes their
 * results.  A step where nothing is due (no enabled analysis's `every`
 * divides it) returns at once, in C: no Python, no MPI.  Every rank skips
 * the same steps; ranks on different steps are caught at the next due step
 * or at finalize.  The first step always enters Python (it binds the
 * analyses), and so does a call from a thread other than insitu_init's.
 */
int insitu_step(int64_t step, double time);

/*
 * insitu_checkpoint -- COLLECTIVE.  Store the analysis state at `step` (the
 * last step handed to insitu_step) in the output file, under
 * /_insitu_state/<step>, after committing every row so far; the newest
 * output.keep_checkpoints (default 2) are kept.  Call it when the model
 * writes its own restart file, before it: a job killed between the two
 * restarts from the model's previous restart file, whose checkpoint is kept.
 */
int insitu_checkpoint(int64_t step);

/*
 * insitu_finalize -- COLLECTIVE.  Write what is pending, close the output
 * file and free insitu's communicators.  Call it before MPI_Finalize.
 */
int insitu_finalize(void);

/*
 * insitu_last_error -- local.  The message of the last failed call on this
 * rank (empty if none).  The pointer stays valid until the next insitu call.
 */
const char *insitu_last_error(void);

/*
 * insitu_abi_version -- local, never starts Python.  INSITU_ABI_VERSION of
 * the library, for a host to check against the header it was built with.
 */
int insitu_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* INSITU_H */
