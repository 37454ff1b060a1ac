/* parse.h: strict number parsing for options and settings: the whole text must be one number within a range
 * (no trailing characters, no overflow, no inf or nan), as the command line and the C API both require. */
#ifndef CNK_PARSE_H
#define CNK_PARSE_H

/* 0 and *out set when text is a base-10 integer in [min, max]; -1 otherwise (*out unchanged). */
int cnk_parse_long(const char *text, long min, long max, long *out);
/* 0 and *out set when text is a finite number in [min, max]; -1 otherwise (*out unchanged). */
int cnk_parse_double(const char *text, double min, double max, double *out);

#endif
