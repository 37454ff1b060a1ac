#include "core/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

int cnk_parse_long(const char *text, long min, long max, long *out)
{
    if (!text || isspace((unsigned char)text[0])) return -1; /* strtol would skip it */
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cnk_parse_double(const char *text, double min, double max, double *out)
{
    if (!text || isspace((unsigned char)text[0])) return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}
