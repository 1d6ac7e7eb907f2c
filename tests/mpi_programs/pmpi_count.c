/* A PMPI call counter, loaded with LD_PRELOAD under mpiexec (tests/test_mpi_calls.py).

   Every MPI function named below is wrapped: it bumps its counter and calls
   the PMPI_ entry.  Because it interposes on the libmpi symbols, it sees the
   calls that mpi4py makes for insitu AND the ones that libhdf5 makes from C
   (the resize broadcasts, the flush's barriers and syncs), which no
   Python-level counter can see.  Open MPI's own internals call their
   implementation directly, so only calls made by the application's
   libraries are counted.

   Python reads the counts through ctypes:
     insitu_pmpi_count() -> number of counters
     insitu_pmpi_name(i), insitu_pmpi_kind(i) -> the function and its class
       ("collective": collectives, communicator creation and collective
        MPI-IO, which synchronise ranks; "p2p": point-to-point;
        "file_independent": one rank's own MPI-IO, no communication)
     insitu_pmpi_counts(long long *out) -> copies every counter
   Completion calls (MPI_Test, MPI_Wait) and local queries (MPI_Comm_rank,
   MPI_Type_*, MPI_Info_*) are not counted: they start no communication.

   Generated from Open MPI 4.1's mpi.h prototypes (MPI-3 const qualifiers). */
#include <mpi.h>
#include <string.h>

static const struct { const char *name, *kind; } table[] = {
    {"MPI_Allreduce", "collective"},
    {"MPI_Iallreduce", "collective"},
    {"MPI_Allgather", "collective"},
    {"MPI_Iallgather", "collective"},
    {"MPI_Allgatherv", "collective"},
    {"MPI_Iallgatherv", "collective"},
    {"MPI_Bcast", "collective"},
    {"MPI_Ibcast", "collective"},
    {"MPI_Barrier", "collective"},
    {"MPI_Ibarrier", "collective"},
    {"MPI_Reduce", "collective"},
    {"MPI_Ireduce", "collective"},
    {"MPI_Gather", "collective"},
    {"MPI_Igather", "collective"},
    {"MPI_Gatherv", "collective"},
    {"MPI_Scatter", "collective"},
    {"MPI_Scatterv", "collective"},
    {"MPI_Alltoall", "collective"},
    {"MPI_Ialltoall", "collective"},
    {"MPI_Alltoallv", "collective"},
    {"MPI_Alltoallw", "collective"},
    {"MPI_Reduce_scatter", "collective"},
    {"MPI_Reduce_scatter_block", "collective"},
    {"MPI_Scan", "collective"},
    {"MPI_Exscan", "collective"},
    {"MPI_Comm_split", "collective"},
    {"MPI_Comm_dup", "collective"},
    {"MPI_Comm_create", "collective"},
    {"MPI_Comm_idup", "collective"},
    {"MPI_Comm_split_type", "collective"},
    {"MPI_Cart_create", "collective"},
    {"MPI_File_open", "collective"},
    {"MPI_File_close", "collective"},
    {"MPI_File_sync", "collective"},
    {"MPI_File_set_size", "collective"},
    {"MPI_File_preallocate", "collective"},
    {"MPI_File_set_view", "collective"},
    {"MPI_File_set_atomicity", "collective"},
    {"MPI_File_write_at_all", "collective"},
    {"MPI_File_read_at_all", "collective"},
    {"MPI_File_write_all", "collective"},
    {"MPI_File_read_all", "collective"},
    {"MPI_File_write_ordered", "collective"},
    {"MPI_File_read_ordered", "collective"},
    {"MPI_File_iwrite_at_all", "collective"},
    {"MPI_File_iread_at_all", "collective"},
    {"MPI_Win_create", "collective"},
    {"MPI_Win_fence", "collective"},
    {"MPI_Send", "p2p"},
    {"MPI_Isend", "p2p"},
    {"MPI_Ssend", "p2p"},
    {"MPI_Issend", "p2p"},
    {"MPI_Rsend", "p2p"},
    {"MPI_Bsend", "p2p"},
    {"MPI_Recv", "p2p"},
    {"MPI_Irecv", "p2p"},
    {"MPI_Sendrecv", "p2p"},
    {"MPI_Sendrecv_replace", "p2p"},
    {"MPI_Probe", "p2p"},
    {"MPI_Iprobe", "p2p"},
    {"MPI_Mprobe", "p2p"},
    {"MPI_Improbe", "p2p"},
    {"MPI_File_write_at", "file_independent"},
    {"MPI_File_read_at", "file_independent"},
    {"MPI_File_write", "file_independent"},
    {"MPI_File_read", "file_independent"},
    {"MPI_File_iwrite_at", "file_independent"},
    {"MPI_File_iread_at", "file_independent"},
    {"MPI_File_get_size", "file_independent"},
    {"MPI_File_delete", "file_independent"},
};
#define NCOUNTERS ((int)(sizeof table / sizeof table[0]))
static long long counts[sizeof table / sizeof table[0]];

int insitu_pmpi_count(void) { return NCOUNTERS; }
const char *insitu_pmpi_name(int i) { return table[i].name; }
const char *insitu_pmpi_kind(int i) { return table[i].kind; }
void insitu_pmpi_counts(long long *out) { memcpy(out, counts, sizeof counts); }

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{ counts[0]++; return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm); }
int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm, MPI_Request *request)
{ counts[1]++; return PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request); }
int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{ counts[2]++; return PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm); }
int MPI_Iallgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{ counts[3]++; return PMPI_Iallgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request); }
int MPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm)
{ counts[4]++; return PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm); }
int MPI_Iallgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int displs[], MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{ counts[5]++; return PMPI_Iallgatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, comm, request); }
int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{ counts[6]++; return PMPI_Bcast(buffer, count, datatype, root, comm); }
int MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm, MPI_Request *request)
{ counts[7]++; return PMPI_Ibcast(buffer, count, datatype, root, comm, request); }
int MPI_Barrier(MPI_Comm comm)
{ counts[8]++; return PMPI_Barrier(comm); }
int MPI_Ibarrier(MPI_Comm comm, MPI_Request *request)
{ counts[9]++; return PMPI_Ibarrier(comm, request); }
int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root, MPI_Comm comm)
{ counts[10]++; return PMPI_Reduce(sendbuf, recvbuf, count, datatype, op, root, comm); }
int MPI_Ireduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, int root, MPI_Comm comm, MPI_Request *request)
{ counts[11]++; return PMPI_Ireduce(sendbuf, recvbuf, count, datatype, op, root, comm, request); }
int MPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)
{ counts[12]++; return PMPI_Gather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm); }
int MPI_Igather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm, MPI_Request *request)
{ counts[13]++; return PMPI_Igather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm, request); }
int MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int displs[], MPI_Datatype recvtype, int root, MPI_Comm comm)
{ counts[14]++; return PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts, displs, recvtype, root, comm); }
int MPI_Scatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)
{ counts[15]++; return PMPI_Scatter(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, root, comm); }
int MPI_Scatterv(const void *sendbuf, const int sendcounts[], const int displs[], MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm)
{ counts[16]++; return PMPI_Scatterv(sendbuf, sendcounts, displs, sendtype, recvbuf, recvcount, recvtype, root, comm); }
int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{ counts[17]++; return PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm); }
int MPI_Ialltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm, MPI_Request *request)
{ counts[18]++; return PMPI_Ialltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request); }
int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[], MPI_Datatype sendtype, void *recvbuf, const int recvcounts[], const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm)
{ counts[19]++; return PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts, rdispls, recvtype, comm); }
int MPI_Alltoallw(const void *sendbuf, const int sendcounts[], const int sdispls[], const MPI_Datatype sendtypes[], void *recvbuf, const int recvcounts[], const int rdispls[], const MPI_Datatype recvtypes[], MPI_Comm comm)
{ counts[20]++; return PMPI_Alltoallw(sendbuf, sendcounts, sdispls, sendtypes, recvbuf, recvcounts, rdispls, recvtypes, comm); }
int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[], MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{ counts[21]++; return PMPI_Reduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op, comm); }
int MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{ counts[22]++; return PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, datatype, op, comm); }
int MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{ counts[23]++; return PMPI_Scan(sendbuf, recvbuf, count, datatype, op, comm); }
int MPI_Exscan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{ counts[24]++; return PMPI_Exscan(sendbuf, recvbuf, count, datatype, op, comm); }
int MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm)
{ counts[25]++; return PMPI_Comm_split(comm, color, key, newcomm); }
int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{ counts[26]++; return PMPI_Comm_dup(comm, newcomm); }
int MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm)
{ counts[27]++; return PMPI_Comm_create(comm, group, newcomm); }
int MPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{ counts[28]++; return PMPI_Comm_idup(comm, newcomm, request); }
int MPI_Comm_split_type(MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm *newcomm)
{ counts[29]++; return PMPI_Comm_split_type(comm, split_type, key, info, newcomm); }
int MPI_Cart_create(MPI_Comm old_comm, int ndims, const int dims[], const int periods[], int reorder, MPI_Comm *comm_cart)
{ counts[30]++; return PMPI_Cart_create(old_comm, ndims, dims, periods, reorder, comm_cart); }
int MPI_File_open(MPI_Comm comm, const char *filename, int amode, MPI_Info info, MPI_File *fh)
{ counts[31]++; return PMPI_File_open(comm, filename, amode, info, fh); }
int MPI_File_close(MPI_File *fh)
{ counts[32]++; return PMPI_File_close(fh); }
int MPI_File_sync(MPI_File fh)
{ counts[33]++; return PMPI_File_sync(fh); }
int MPI_File_set_size(MPI_File fh, MPI_Offset size)
{ counts[34]++; return PMPI_File_set_size(fh, size); }
int MPI_File_preallocate(MPI_File fh, MPI_Offset size)
{ counts[35]++; return PMPI_File_preallocate(fh, size); }
int MPI_File_set_view(MPI_File fh, MPI_Offset disp, MPI_Datatype etype, MPI_Datatype filetype, const char *datarep, MPI_Info info)
{ counts[36]++; return PMPI_File_set_view(fh, disp, etype, filetype, datarep, info); }
int MPI_File_set_atomicity(MPI_File fh, int flag)
{ counts[37]++; return PMPI_File_set_atomicity(fh, flag); }
int MPI_File_write_at_all(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[38]++; return PMPI_File_write_at_all(fh, offset, buf, count, datatype, status); }
int MPI_File_read_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[39]++; return PMPI_File_read_at_all(fh, offset, buf, count, datatype, status); }
int MPI_File_write_all(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[40]++; return PMPI_File_write_all(fh, buf, count, datatype, status); }
int MPI_File_read_all(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[41]++; return PMPI_File_read_all(fh, buf, count, datatype, status); }
int MPI_File_write_ordered(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[42]++; return PMPI_File_write_ordered(fh, buf, count, datatype, status); }
int MPI_File_read_ordered(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[43]++; return PMPI_File_read_ordered(fh, buf, count, datatype, status); }
int MPI_File_iwrite_at_all(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{ counts[44]++; return PMPI_File_iwrite_at_all(fh, offset, buf, count, datatype, request); }
int MPI_File_iread_at_all(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{ counts[45]++; return PMPI_File_iread_at_all(fh, offset, buf, count, datatype, request); }
int MPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, MPI_Win *win)
{ counts[46]++; return PMPI_Win_create(base, size, disp_unit, info, comm, win); }
int MPI_Win_fence(int assert, MPI_Win win)
{ counts[47]++; return PMPI_Win_fence(assert, win); }
int MPI_Send(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{ counts[48]++; return PMPI_Send(buf, count, datatype, dest, tag, comm); }
int MPI_Isend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{ counts[49]++; return PMPI_Isend(buf, count, datatype, dest, tag, comm, request); }
int MPI_Ssend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{ counts[50]++; return PMPI_Ssend(buf, count, datatype, dest, tag, comm); }
int MPI_Issend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm, MPI_Request *request)
{ counts[51]++; return PMPI_Issend(buf, count, datatype, dest, tag, comm, request); }
int MPI_Rsend(const void *ibuf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{ counts[52]++; return PMPI_Rsend(ibuf, count, datatype, dest, tag, comm); }
int MPI_Bsend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm)
{ counts[53]++; return PMPI_Bsend(buf, count, datatype, dest, tag, comm); }
int MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Status *status)
{ counts[54]++; return PMPI_Recv(buf, count, datatype, source, tag, comm, status); }
int MPI_Irecv(void *buf, int count, MPI_Datatype datatype, int source, int tag, MPI_Comm comm, MPI_Request *request)
{ counts[55]++; return PMPI_Irecv(buf, count, datatype, source, tag, comm, request); }
int MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype, int dest, int sendtag, void *recvbuf, int recvcount, MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm, MPI_Status *status)
{ counts[56]++; return PMPI_Sendrecv(sendbuf, sendcount, sendtype, dest, sendtag, recvbuf, recvcount, recvtype, source, recvtag, comm, status); }
int MPI_Sendrecv_replace(void * buf, int count, MPI_Datatype datatype, int dest, int sendtag, int source, int recvtag, MPI_Comm comm, MPI_Status *status)
{ counts[57]++; return PMPI_Sendrecv_replace(buf, count, datatype, dest, sendtag, source, recvtag, comm, status); }
int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status)
{ counts[58]++; return PMPI_Probe(source, tag, comm, status); }
int MPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status)
{ counts[59]++; return PMPI_Iprobe(source, tag, comm, flag, status); }
int MPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message *message, MPI_Status *status)
{ counts[60]++; return PMPI_Mprobe(source, tag, comm, message, status); }
int MPI_Improbe(int source, int tag, MPI_Comm comm, int *flag, MPI_Message *message, MPI_Status *status)
{ counts[61]++; return PMPI_Improbe(source, tag, comm, flag, message, status); }
int MPI_File_write_at(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[62]++; return PMPI_File_write_at(fh, offset, buf, count, datatype, status); }
int MPI_File_read_at(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[63]++; return PMPI_File_read_at(fh, offset, buf, count, datatype, status); }
int MPI_File_write(MPI_File fh, const void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[64]++; return PMPI_File_write(fh, buf, count, datatype, status); }
int MPI_File_read(MPI_File fh, void *buf, int count, MPI_Datatype datatype, MPI_Status *status)
{ counts[65]++; return PMPI_File_read(fh, buf, count, datatype, status); }
int MPI_File_iwrite_at(MPI_File fh, MPI_Offset offset, const void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{ counts[66]++; return PMPI_File_iwrite_at(fh, offset, buf, count, datatype, request); }
int MPI_File_iread_at(MPI_File fh, MPI_Offset offset, void *buf, int count, MPI_Datatype datatype, MPI_Request *request)
{ counts[67]++; return PMPI_File_iread_at(fh, offset, buf, count, datatype, request); }
int MPI_File_get_size(MPI_File fh, MPI_Offset *size)
{ counts[68]++; return PMPI_File_get_size(fh, size); }
int MPI_File_delete(const char *filename, MPI_Info info)
{ counts[69]++; return PMPI_File_delete(filename, info); }
