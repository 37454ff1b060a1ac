/* version.c: the version functions of cnnkit/version.h. */
#include "nn/modelfile.h"

#include "cnnkit/version.h"

const char *cnk_version(void) { return CNNKIT_VERSION; }

int cnk_version_number(void) { return CNNKIT_VERSION_NUMBER; }

int cnk_model_format_version(void) { return CNK_MODELFILE_VERSION; }
