/* SPDX-License-Identifier: MIT */
/* error.c - libpshm_mpi's codes (1100-1119) and MPI's error classes. */
#include "mpi_internal.h"

const char *pshm_mpi_strerror(int code)
{
    switch (-code) {
#define PSHM_MPI__ERR_MSG(name, value, msg) case PSHM_##name: return msg;
        PSHM_MPI_ERRNO_MAP(PSHM_MPI__ERR_MSG)
#undef PSHM_MPI__ERR_MSG
    default:
        return pshm_strerror(code);
    }
}

const char *pshm_mpi_errname(int code)
{
    switch (-code) {
#define PSHM_MPI__ERR_NAME(name, value, msg) case PSHM_##name: return "PSHM_" #name;
        PSHM_MPI_ERRNO_MAP(PSHM_MPI__ERR_NAME)
#undef PSHM_MPI__ERR_NAME
    default:
        return pshm_errname(code);
    }
}

int pshm_mpi_error(int mpi_err)
{
    int cls = MPI_ERR_OTHER;

    if (mpi_err == MPI_SUCCESS)
        return 0;
    /* Before MPI_Init and after MPI_Finalize no MPI call but a few may be
     * made: an unknown class is then just "an MPI call failed". */
    if (MPI_Error_class(mpi_err, &cls) != MPI_SUCCESS)
        return -PSHM_EMPI;
#ifdef MPIX_ERR_PROC_FAILED
    if (cls == MPIX_ERR_PROC_FAILED)
        return -PSHM_EMPI_PROC_FAILED;
#endif
    switch (cls) {
    case MPI_ERR_NO_MEM:
        return -ENOMEM;
    case MPI_ERR_COMM:
    case MPI_ERR_GROUP:
    case MPI_ERR_RANK:
    case MPI_ERR_ROOT:
    case MPI_ERR_TOPOLOGY:
        return -PSHM_EMPI_COMM;
    case MPI_ERR_COUNT:
    case MPI_ERR_TYPE:
    case MPI_ERR_TAG:
    case MPI_ERR_BUFFER:
    case MPI_ERR_ARG:
    case MPI_ERR_OP:
    case MPI_ERR_REQUEST:
    case MPI_ERR_INFO:
    case MPI_ERR_INFO_KEY:
    case MPI_ERR_INFO_VALUE:
    case MPI_ERR_INFO_NOKEY:
        return -PSHM_EMPI_ARG;
    case MPI_ERR_WIN:
    case MPI_ERR_BASE:
    case MPI_ERR_SIZE:
    case MPI_ERR_DISP:
    case MPI_ERR_LOCKTYPE:
    case MPI_ERR_ASSERT:
    case MPI_ERR_RMA_CONFLICT:
    case MPI_ERR_RMA_SYNC:
    case MPI_ERR_RMA_RANGE:
    case MPI_ERR_RMA_ATTACH:
    case MPI_ERR_RMA_SHARED:
    case MPI_ERR_RMA_FLAVOR:
        return -PSHM_EMPI_RMA;
    case MPI_ERR_TRUNCATE:
        return -PSHM_EMPI_TRUNCATE;
    default:
        return -PSHM_EMPI;
    }
}
