/*
 * ring.c -- the insitu C ABI from C: a 1-D field split over the ranks, with
 * one halo cell each side, relaxed towards its neighbours' mean each step.
 *
 *   make PYTHON=../../.venv/bin/python
 *   mpirun -n 3 ./ring ring.yaml 1000 50
 *
 * Every insitu call returns a status; on failure the program prints
 * insitu_last_error() and aborts the whole job, so no rank is left waiting.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <insitu.h>

#define CHECK(call)                                                              \
    do {                                                                         \
        if ((call) != INSITU_OK) {                                               \
            fprintf(stderr, "ring: %s failed: %s\n", #call, insitu_last_error()); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                        \
        }                                                                        \
    } while (0)

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 4) {
        if (rank == 0) fprintf(stderr, "usage: ring CONFIG N STEPS\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    long n = atol(argv[2]), steps = atol(argv[3]);
    /* block distribution: the first n % size ranks get one more point */
    long local = n / size + (rank < n % size), start = rank * (n / size) + (rank < n % size ? rank : n % size);
    double *a = malloc((local + 2) * sizeof *a), *b = malloc((local + 2) * sizeof *b);
    for (long i = 0; i < local + 2; i++) a[i] = b[i] = 0.0;
    for (long i = 1; i <= local; i++) a[i] = sin(0.01 * (double)(start + i - 1)) + 2.0;
    int left = (rank + size - 1) % size, right = (rank + 1) % size;

    CHECK(insitu_init(MPI_Comm_c2f(MPI_COMM_WORLD), argv[1]));
    int64_t gshape[1] = {n}, offset[1] = {start}, lshape[1] = {local + 2}, halo[1] = {1};
    CHECK(insitu_declare_field("u", INSITU_REAL64, 1, gshape, offset, lshape, halo, halo,
                               INSITU_ORDER_C));
    for (long step = 1; step <= steps; step++) {
        MPI_Sendrecv(&a[local], 1, MPI_DOUBLE, right, 0, &a[0], 1, MPI_DOUBLE, left, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(&a[1], 1, MPI_DOUBLE, left, 1, &a[local + 1], 1, MPI_DOUBLE, right, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (long i = 1; i <= local; i++) b[i] = 0.5 * a[i] + 0.25 * (a[i - 1] + a[i + 1]);
        double *t = a; a = b; b = t;
        CHECK(insitu_expose("u", a, INSITU_REAL64, 1, lshape)); /* the buffers swapped */
        CHECK(insitu_step(step, (double)step));
    }
    CHECK(insitu_finalize());
    if (rank == 0) printf("ring: %ld points, %ld steps\n", n, steps);
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
