/* csv.h: RFC 4180 CSV files with a header row (feature tables, pixel tables, predictions) read into memory
 * with each row's line number kept for "FILE:LINE: problem" errors, and a writer that quotes when needed. */
#ifndef CNK_CSV_H
#define CNK_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "core/context.h"

/* Limits that turn absurd inputs into clear errors instead of exhausted memory. */
#define CNK_CSV_MAX_BYTES ((size_t)2 << 30) /* 2 GiB of text */
#define CNK_CSV_MAX_COLUMNS ((size_t)1 << 20)

/* A parsed table. Cells are NUL-terminated strings, unquoted ("a""b" -> a"b), owned by the table.
 * Accepted syntax: fields separated by ',', records by LF, CRLF or a lone CR; a field may be enclosed in
 * double quotes and then contain commas, line breaks and doubled quotes; a leading UTF-8 BOM is skipped.
 * Blank lines are skipped (so a trailing newline or two do no harm). Every record must have exactly as
 * many fields as the header; header names must be distinct. A header with no data rows is accepted
 * (n_rows == 0): whether that is an error is the caller's call. */
typedef struct cnk_csv {
    char name[1024];     /* the file name used in messages */
    size_t n_cols;
    size_t n_rows;       /* data rows, the header excluded */
    char **header;       /* n_cols column names */
    char **cells;        /* n_rows * n_cols, row-major */
    size_t header_line;  /* 1-based line of the header */
    size_t *row_lines;   /* 1-based line on which each data row starts (a quoted field may span lines) */
    char *arena;         /* the storage every string points into */
} cnk_csv;

/* Reads and parses a file (at most CNK_CSV_MAX_BYTES). On failure out is left empty (safe to release). */
int cnk_csv_read(cnk_ctx *ctx, const char *path, cnk_csv *out);
/* Parses size bytes of text (need not be NUL-terminated); name is used in messages. */
int cnk_csv_parse(cnk_ctx *ctx, const char *name, const char *text, size_t size, cnk_csv *out);
void cnk_csv_release(cnk_csv *csv);

/* The cell at (row, col); both must be in range. */
const char *cnk_csv_cell(const cnk_csv *csv, size_t row, size_t col);
/* The 1-based file line where data row `row` starts. */
size_t cnk_csv_line(const cnk_csv *csv, size_t row);

/* 1 and *col set if a column has exactly this name, else 0. */
int cnk_csv_find_column(const cnk_csv *csv, const char *name, size_t *col);
/* Like cnk_csv_find_column but fails with "FILE:LINE: no column 'name'" when it is missing. */
int cnk_csv_require_column(cnk_ctx *ctx, const cnk_csv *csv, const char *name, size_t *col);

/* Strict number syntax: optional spaces, sign, decimal digits with an optional '.' and exponent, optional
 * spaces. No hex, inf or nan. Returns NULL and sets *value when text is a finite double, else a short
 * reason ("is empty", "is not a number", "is out of range"). Underflow to 0 or a subnormal is accepted. */
const char *cnk_csv_number_problem(const char *text, double *value);
/* The cell at (row, col) as a number; fails with "FILE:LINE: column 'x': 'abc' is not a number". */
int cnk_csv_get_double(cnk_ctx *ctx, const cnk_csv *csv, size_t row, size_t col, double *value);
/* Same, and also refuses values beyond float range (e.g. 1e39). */
int cnk_csv_get_float(cnk_ctx *ctx, const cnk_csv *csv, size_t row, size_t col, float *value);

/* 1 when a field must be quoted to survive a round trip (it holds ',', '"', CR or LF, or starts or ends
 * with a space). */
int cnk_csv_needs_quotes(const char *field);
/* Writes one field, quoted and with doubled quotes when needed. Write errors show up in ferror(fp), which
 * cnk_afile_commit checks, so the caller need not test every call. */
void cnk_csv_write_field(FILE *fp, const char *field);
/* Writes n fields separated by commas and ends the record with "\n". */
void cnk_csv_write_row(FILE *fp, const char *const *fields, size_t n);

#endif
