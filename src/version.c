/* SPDX-License-Identifier: MIT */
/* version.c - the library's version at run time, from the header it was built with. */
#include "internal.h"

unsigned pshm_version(void)
{
    return PSHM_VERSION_NUMBER;
}

const char *pshm_version_string(void)
{
    return PSHM_VERSION_STRING;
}
