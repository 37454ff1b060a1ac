/* cnnkit/cnnkit.h: the whole public API of libcnnkit (link with `pkg-config --libs cnnkit` or CMake's
 * cnnkit::cnnkit). Every call takes a cnk_ctx and returns a cnk_status; see each header. */
#ifndef CNNKIT_H
#define CNNKIT_H

#include "cnnkit/version.h"
#include "cnnkit/context.h"
#include "cnnkit/features.h"
#include "cnnkit/report.h"
#include "cnnkit/classify.h"
#include "cnnkit/train.h"

#endif
