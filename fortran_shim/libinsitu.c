/*
 * libinsitu.c -- the C side of libinsitu (compiled by build_libinsitu.py).
 *
 * The public insitu_* functions (insitu.h) live here.  They
 *   1. start the embedded Python themselves with the venv's interpreter path
 *      (cffi's own start-up would resolve `python3` through $PATH and miss
 *      the venv), overridable by $INSITU_PYTHON;
 *   2. check in C what needs no Python: state, NULL pointers, name lengths;
 *   3. keep the table of exposed pointers, so insitu_expose costs a string
 *      compare and never crosses into Python, and tell Python which of them
 *      moved since it last looked (_insitu_moved), so a due step rebinds
 *      only those;
 *   4. keep the session's cadence (the periods of its enabled analyses,
 *      pushed by Python after each step that entered it), so insitu_step
 *      returns at once on a step where nothing is due: no Python, no MPI;
 *   5. call the _insitu_py_* exports (insitu/cabi.py) and translate their
 *      status: those return INSITU_PY_OFFSET + status, because cffi makes a
 *      failed interpreter start return 0 from every export.
 */
#include <Python.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "insitu.h"

#ifndef INSITU_DEFAULT_PYTHON
#define INSITU_DEFAULT_PYTHON "python3"
#endif
#define INSITU_PY_OFFSET 100
#define EXPORT __attribute__((visibility("default")))

enum { CLOSED = 0, OPEN = 1 };

static char errbuf[16384];
static int state = CLOSED;
static int finalized = 0;
static int myrank = -1;
static int nfields = 0;
static char field_names[INSITU_MAX_FIELDS][INSITU_MAX_NAME];
static const void *field_data[INSITU_MAX_FIELDS];
/* What each field was declared as, so that insitu_expose can refuse memory
 * of another type or size without crossing into Python. */
static int field_dtype[INSITU_MAX_FIELDS];
static int field_ndim[INSITU_MAX_FIELDS];
static int64_t field_shape[INSITU_MAX_FIELDS][INSITU_MAX_NDIM];
/* The address Python last bound for each field (see _insitu_moved). */
static const void *field_seen[INSITU_MAX_FIELDS];

/* The cadence (insitu/cadence.py): a step is due when one of these periods
 * divides it.  Unknown (ncadence < 0) until Python has bound the analyses
 * at the first step, and when Python cannot describe it in this table:
 * then every step enters Python, which decides there. */
#define INSITU_MAX_CADENCE 64
static int ncadence = -1;
static int64_t cadence[INSITU_MAX_CADENCE];
/* The thread that opened the session: a call from another thread always
 * enters Python, which refuses it with a message naming both threads. */
static pthread_t owner;
/* The last step that returned in C, if no call entered Python since: the
 * session's record of the last step handed over (a period window ends at
 * the last step the model reached) is brought up to date from it. */
static int idle_pending = 0;
static int64_t idle_step = 0;
static double idle_time = 0.0;

/* called from Python */
static void _insitu_set_error(const char *msg)
{
    snprintf(errbuf, sizeof errbuf, "%s", msg);
}
static void _insitu_set_rank(int rank) { myrank = rank; }
static int _insitu_field_count(void) { return nfields; }

/* The fields whose exposed address changed since the last call: their
 * indices and addresses, in index order; returns how many.  One call per
 * step that enters Python, whatever the number of fields. */
static int _insitu_moved(int *index, uintptr_t *address)
{
    int n = 0;
    for (int i = 0; i < nfields; i++) {
        if (field_data[i] != field_seen[i]) {
            field_seen[i] = field_data[i];
            index[n] = i;
            address[n] = (uintptr_t)field_data[i];
            n++;
        }
    }
    return n;
}

/* Whether any exposed address changed since Python last looked: passed
 * with each step that enters Python, which asks _insitu_moved only then. */
static int any_moved(void)
{
    for (int i = 0; i < nfields; i++)
        if (field_data[i] != field_seen[i]) return 1;
    return 0;
}

/* Python could not bind what _insitu_moved reported: report every field
 * again at the next step. */
static void _insitu_forget_moved(void)
{
    for (int i = 0; i < INSITU_MAX_FIELDS; i++) field_seen[i] = NULL;
}

/* n >= 0 periods, or n < 0: unknown (every step enters Python). */
static void _insitu_set_cadence(const int64_t *periods, int n)
{
    if (n < 0 || n > INSITU_MAX_CADENCE) {
        ncadence = -1;
        return;
    }
    for (int i = 0; i < n; i++) cadence[i] = periods[i];
    ncadence = n;
}

/* The last step that returned in C since Python was last entered, and
 * forget it: returns 0 if there is none. */
static int _insitu_take_idle(int64_t *step, double *time)
{
    int pending = idle_pending;
    *step = idle_step;
    *time = idle_time;
    idle_pending = 0;
    return pending;
}

/* Nothing is due at `step`, so insitu_step may return without Python.
 * Python decides whenever the cadence is unknown or the caller is not the
 * thread that opened the session (Python refuses that call). */
static int step_is_idle(int64_t step)
{
    if (ncadence < 0 || !pthread_equal(pthread_self(), owner)) return 0;
    for (int i = 0; i < ncadence; i++)
        if (step % cadence[i] == 0) return 0;
    return 1;
}

static int fail(int code, const char *fmt, const char *a, const char *b)
{
    char head[64];
    if (myrank >= 0) snprintf(head, sizeof head, " (rank %d)", myrank);
    else head[0] = '\0';
    snprintf(errbuf, sizeof errbuf, fmt, a ? a : "", b ? b : "");
    size_t n = strlen(errbuf);
    snprintf(errbuf + n, sizeof errbuf - n, "%s", head);
    return code;
}

/* Start Python with the venv's interpreter path unless someone already did
 * (a Python host, or an earlier call). */
static int start_python(void)
{
    if (Py_IsInitialized()) return INSITU_OK;
    const char *exe = getenv("INSITU_PYTHON");
    if (exe == NULL || exe[0] == '\0') exe = INSITU_DEFAULT_PYTHON;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* the host owns SIGINT and friends */
    config.parse_argv = 0;
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, exe);
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        snprintf(errbuf, sizeof errbuf,
                 "insitu: the embedded Python (%s) failed to start: %s%s%s", exe,
                 st.func ? st.func : "", st.func ? ": " : "",
                 st.err_msg ? st.err_msg : "unknown error");
        return INSITU_ERR_PYTHON;
    }
    PyEval_SaveThread(); /* release the GIL; each export takes it back */
    return INSITU_OK;
}

static int from_python(int r, const char *what)
{
    if (r == 0) {
        snprintf(errbuf, sizeof errbuf,
                 "%s: the embedded Python failed to initialize or to import insitu "
                 "(interpreter %s; the traceback is on stderr). Is libinsitu's venv "
                 "intact, or $INSITU_PYTHON right?",
                 what, getenv("INSITU_PYTHON") ? getenv("INSITU_PYTHON") : INSITU_DEFAULT_PYTHON);
        return INSITU_ERR_PYTHON;
    }
    if (r < INSITU_PY_OFFSET) {
        snprintf(errbuf, sizeof errbuf, "%s: unexpected status %d from Python", what, r);
        return INSITU_ERR;
    }
    return r - INSITU_PY_OFFSET;
}

EXPORT int insitu_abi_version(void) { return INSITU_ABI_VERSION; }

EXPORT void insitu_set_error(const char *msg)
{
    char head[64] = "";
    if (myrank >= 0 && msg && !strstr(msg, "(rank ")) snprintf(head, sizeof head, " (rank %d)", myrank);
    snprintf(errbuf, sizeof errbuf, "%s%s", msg ? msg : "", head);
}

static const char *dtype_name(int dtype)
{
    switch (dtype) {
    case INSITU_REAL32: return "real32";
    case INSITU_REAL64: return "real64";
    case INSITU_INT32: return "int32";
    case INSITU_INT64: return "int64";
    default: return "an unknown dtype";
    }
}

static void format_shape(char *out, size_t size, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(out, size, "(");
    for (int d = 0; d < ndim && n < size; d++)
        n += (size_t)snprintf(out + n, size - n, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (n < size) snprintf(out + n, size - n, ")");
}

/* Compare what the caller passes with the declaration of field i. */
static int check_exposed(int i, const char *name, int dtype, int ndim, const int64_t *shape)
{
    int same = dtype == field_dtype[i] && ndim == field_ndim[i] && shape != NULL;
    for (int d = 0; same && d < ndim; d++) same = shape[d] == field_shape[i][d];
    if (same) return INSITU_OK;
    char declared[128], passed[128];
    format_shape(declared, sizeof declared, field_ndim[i], field_shape[i]);
    if (shape != NULL && ndim >= 1 && ndim <= INSITU_MAX_NDIM)
        format_shape(passed, sizeof passed, ndim, shape);
    else
        snprintf(passed, sizeof passed, "rank %d", ndim);
    snprintf(errbuf, sizeof errbuf,
             "insitu_expose('%s'): declared %s with local shape %s (halos included), "
             "passed %s with shape %s; insitu will not read memory of another type or size "
             "(rank %d)", name, dtype_name(field_dtype[i]), declared, dtype_name(dtype), passed,
             myrank);
    return INSITU_ERR_ARGUMENT;
}

EXPORT const char *insitu_last_error(void) { return errbuf; }

/* At exit: a host that never called insitu_finalize leaves a file that is
 * not marked finished (and loses rows still buffered); say so.  The
 * embedded interpreter is never finalized, so Python's atexit cannot. */
static void warn_unfinished(void)
{
    if (state == OPEN)
        fprintf(stderr, "insitu[%d] WARNING: the process is exiting without insitu_finalize; "
                        "the output keeps the steps flushed so far but is not marked finished\n",
                myrank);
}

/* restart_step: -2 no restart, -1 the latest checkpoint, >= 0 the latest at
 * or before it (insitu_init_restart). */
static int init_session(int fcomm, const char *config_path, int64_t restart_step)
{
    errbuf[0] = '\0';
    if (state == OPEN)
        return fail(INSITU_ERR_STATE, "insitu_init: a session is already open (double init)%s%s", NULL, NULL);
    if (config_path == NULL)
        return fail(INSITU_ERR_ARGUMENT, "insitu_init: config_path is NULL%s%s", NULL, NULL);
    int r = start_python();
    if (r != INSITU_OK) return r;
    r = from_python(_insitu_py_init(fcomm, config_path, restart_step), "insitu_init");
    if (r == INSITU_OK) {
        static int hooked = 0;
        if (!hooked) hooked = atexit(warn_unfinished) == 0;
        state = OPEN;
        finalized = 0;
        nfields = 0;
        memset(field_data, 0, sizeof field_data);
        _insitu_forget_moved();
        ncadence = -1;
        owner = pthread_self();
        idle_pending = 0;
    }
    return r;
}

EXPORT int insitu_init(int fcomm, const char *config_path)
{
    return init_session(fcomm, config_path, -2);
}

EXPORT int insitu_init_restart(int fcomm, const char *config_path, int64_t restart_step)
{
    return init_session(fcomm, config_path, restart_step < 0 ? -1 : restart_step);
}

EXPORT int insitu_declare_field(const char *name, int dtype, int ndim,
                                const int64_t *global_shape, const int64_t *offset,
                                const int64_t *local_shape, const int64_t *halo_lo,
                                const int64_t *halo_hi, int order)
{
    errbuf[0] = '\0';
    if (state != OPEN)
        return fail(INSITU_ERR_STATE, "insitu_declare_field('%s'): no open session (call insitu_init first)%s",
                    name ? name : "(null)", NULL);
    if (name == NULL)
        return fail(INSITU_ERR_ARGUMENT, "insitu_declare_field: name is NULL%s%s", NULL, NULL);
    if (strlen(name) >= INSITU_MAX_NAME)
        return fail(INSITU_ERR_ARGUMENT, "insitu_declare_field('%s'): name longer than 63 characters%s", name, NULL);
    if (!global_shape || !offset || !local_shape || !halo_lo || !halo_hi)
        return fail(INSITU_ERR_ARGUMENT, "insitu_declare_field('%s'): a shape, offset or halo array is NULL%s", name, NULL);
    if (nfields >= INSITU_MAX_FIELDS)
        return fail(INSITU_ERR_ARGUMENT, "insitu_declare_field('%s'): more than INSITU_MAX_FIELDS fields%s", name, NULL);
    /* Python checks everything else, collectively, and raises on all ranks. */
    int r = from_python(_insitu_py_declare(name, dtype, ndim, global_shape, offset, local_shape,
                                           halo_lo, halo_hi, order),
                        "insitu_declare_field");
    if (r == INSITU_OK) {
        snprintf(field_names[nfields], INSITU_MAX_NAME, "%s", name);
        field_data[nfields] = NULL;
        field_seen[nfields] = NULL;
        field_dtype[nfields] = dtype;
        field_ndim[nfields] = ndim;
        for (int d = 0; d < ndim && d < INSITU_MAX_NDIM; d++) field_shape[nfields][d] = local_shape[d];
        nfields++;
    }
    return r;
}

EXPORT int insitu_expose(const char *name, const void *data, int dtype, int ndim,
                         const int64_t *shape)
{
    errbuf[0] = '\0';
    if (state != OPEN)
        return fail(INSITU_ERR_STATE, "insitu_expose('%s'): no open session (call insitu_init first)%s",
                    name ? name : "(null)", NULL);
    if (name == NULL)
        return fail(INSITU_ERR_ARGUMENT, "insitu_expose: name is NULL%s%s", NULL, NULL);
    if (data == NULL)
        return fail(INSITU_ERR_ARGUMENT, "insitu_expose('%s'): data pointer is NULL%s", name, NULL);
    for (int i = 0; i < nfields; i++) {
        if (strcmp(field_names[i], name) == 0) {
            int r = check_exposed(i, name, dtype, ndim, shape);
            if (r == INSITU_OK) field_data[i] = data;
            return r;
        }
    }
    return fail(INSITU_ERR_ARGUMENT, "insitu_expose('%s'): no field of that name was declared%s", name, NULL);
}

EXPORT int insitu_step(int64_t step, double time)
{
    errbuf[0] = '\0';
    if (state != OPEN)
        return fail(INSITU_ERR_STATE, "insitu_step: no open session (call insitu_init first)%s%s", NULL, NULL);
    if (step_is_idle(step)) { /* nothing due: no Python, no MPI */
        idle_step = step;
        idle_time = time;
        idle_pending = 1;
        return INSITU_OK;
    }
    if (pthread_equal(pthread_self(), owner)) idle_pending = 0; /* Python records this one */
    return from_python(_insitu_py_step(step, time, any_moved()), "insitu_step");
}

EXPORT int insitu_checkpoint(int64_t step)
{
    errbuf[0] = '\0';
    if (state != OPEN)
        return fail(INSITU_ERR_STATE, "insitu_checkpoint: no open session (call insitu_init first)%s%s", NULL, NULL);
    return from_python(_insitu_py_checkpoint(step), "insitu_checkpoint");
}

EXPORT int insitu_finalize(void)
{
    errbuf[0] = '\0';
    if (state != OPEN)
        return fail(INSITU_ERR_STATE, finalized ? "insitu_finalize: called twice%s%s"
                                                : "insitu_finalize: no open session%s%s", NULL, NULL);
    int r = from_python(_insitu_py_finalize(), "insitu_finalize");
    /* A refused call (another thread: INSITU_ERR_STATE) leaves the session
     * open for its owner; any other outcome closed it on the Python side. */
    if (r != INSITU_ERR_STATE) {
        state = CLOSED;
        finalized = 1;
        nfields = 0;
        ncadence = -1;
    }
    return r;
}
