#include "pipeline/csv.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

/* The parser's cursor: input text, output arena, and the growing list of cell pointers. */
typedef struct csv_parser {
    cnk_ctx *ctx;
    const char *name;
    const char *text;
    size_t size;
    size_t pos;
    size_t line;   /* 1-based line of text[pos] */
    char *arena;   /* unquoted fields are copied here; never longer than the input, so never reallocated */
    size_t written;
    char **cells;  /* header cells first, then data cells */
    size_t n_cells;
    size_t cap_cells;
    size_t *row_lines;
    size_t n_rows;
    size_t cap_rows;
} csv_parser;

static int grow(cnk_ctx *ctx, void **items, size_t *cap, size_t need, size_t item_size, const char *name)
{
    if (need <= *cap) return CNK_OK;
    size_t new_cap = *cap ? *cap : 256;
    while (new_cap < need) new_cap *= 2;
    void *grown = realloc(*items, new_cap * item_size);
    if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory parsing CSV", name);
    *items = grown;
    *cap = new_cap;
    return CNK_OK;
}

static int is_record_end(char c) { return c == '\n' || c == '\r'; }

/* Consumes one LF, CRLF or lone CR and counts the line. */
static void skip_newline(csv_parser *p)
{
    if (p->pos < p->size && p->text[p->pos] == '\r') p->pos++;
    else if (p->pos < p->size && p->text[p->pos] == '\n') {
        p->pos++;
        p->line++;
        return;
    }
    if (p->pos < p->size && p->text[p->pos] == '\n') p->pos++;
    p->line++;
}

static int fail_nul(csv_parser *p)
{
    return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: NUL byte in the text (not a CSV file?)", p->name, p->line);
}

/* A field in double quotes: commas, line breaks and "" (one quote) are content. */
static int parse_quoted(csv_parser *p)
{
    size_t open_line = p->line;
    p->pos++; /* the opening quote */
    for (;;) {
        if (p->pos >= p->size)
            return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: quoted field never closed", p->name, open_line);
        char c = p->text[p->pos];
        if (c == '"') {
            if (p->pos + 1 < p->size && p->text[p->pos + 1] == '"') {
                p->arena[p->written++] = '"';
                p->pos += 2;
                continue;
            }
            p->pos++;
            break;
        }
        if (c == '\0') return fail_nul(p);
        if (c == '\n' || (c == '\r' && (p->pos + 1 >= p->size || p->text[p->pos + 1] != '\n'))) p->line++;
        p->arena[p->written++] = c;
        p->pos++;
    }
    if (p->pos < p->size && p->text[p->pos] != ',' && !is_record_end(p->text[p->pos]))
        return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: unexpected text after a closing quote", p->name, p->line);
    return CNK_OK;
}

static int parse_unquoted(csv_parser *p)
{
    /* Locals, not p->...: the arena is a char buffer, so every store to it could alias the parser's fields
     * and the compiler would reload them per byte. This loop handles nearly every byte of a numeric table. */
    const char *text = p->text;
    size_t pos = p->pos, size = p->size;
    char *out = p->arena + p->written;
    while (pos < size) {
        char c = text[pos];
        if (c == ',' || c == '\n' || c == '\r') break;
        if (c == '"' || c == '\0') {
            p->pos = pos;
            if (c == '\0') return fail_nul(p);
            return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: a quote inside an unquoted field (quote the whole field)",
                            p->name, p->line);
        }
        *out++ = c;
        pos++;
    }
    p->written = (size_t)(out - p->arena);
    p->pos = pos;
    return CNK_OK;
}

/* Parses one record starting at p->pos (not on a blank line); *n_fields gets its field count. */
static int parse_record(csv_parser *p, size_t *n_fields)
{
    *n_fields = 0;
    for (;;) {
        char *start = p->arena + p->written;
        int rc = (p->pos < p->size && p->text[p->pos] == '"') ? parse_quoted(p) : parse_unquoted(p);
        if (rc) return rc;
        p->arena[p->written++] = '\0';
        rc = grow(p->ctx, (void **)&p->cells, &p->cap_cells, p->n_cells + 1, sizeof *p->cells, p->name);
        if (rc) return rc;
        p->cells[p->n_cells++] = start;
        if (++*n_fields > CNK_CSV_MAX_COLUMNS)
            return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: more than %zu fields in a record", p->name, p->line,
                            CNK_CSV_MAX_COLUMNS);
        if (p->pos < p->size && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        break;
    }
    if (p->pos < p->size) skip_newline(p);
    return CNK_OK;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int check_unique_header(cnk_ctx *ctx, const cnk_csv *csv)
{
    char **sorted = malloc(csv->n_cols * sizeof *sorted);
    if (!sorted) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory parsing CSV", csv->name);
    memcpy(sorted, csv->header, csv->n_cols * sizeof *sorted);
    qsort(sorted, csv->n_cols, sizeof *sorted, compare_names);
    int rc = CNK_OK;
    for (size_t i = 1; i < csv->n_cols && !rc; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: duplicate column name '%.100s' in the header", csv->name,
                          csv->header_line, sorted[i]);
    free(sorted);
    return rc;
}

/* Reads records until the end; the first one is the header. */
static int parse_all(csv_parser *p, cnk_csv *out)
{
    int have_header = 0;
    while (p->pos < p->size) {
        if (is_record_end(p->text[p->pos])) { /* a blank line */
            skip_newline(p);
            continue;
        }
        size_t line = p->line, n_fields;
        int rc = parse_record(p, &n_fields);
        if (rc) return rc;
        if (!have_header) {
            have_header = 1;
            out->n_cols = n_fields;
            out->header_line = line;
            continue;
        }
        if (n_fields != out->n_cols)
            return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%zu: %zu fields, but the header has %zu", p->name, line,
                            n_fields, out->n_cols);
        rc = grow(p->ctx, (void **)&p->row_lines, &p->cap_rows, p->n_rows + 1, sizeof *p->row_lines, p->name);
        if (rc) return rc;
        p->row_lines[p->n_rows++] = line;
    }
    if (!have_header) return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s: empty file, expected a header row", p->name);
    return CNK_OK;
}

int cnk_csv_parse(cnk_ctx *ctx, const char *name, const char *text, size_t size, cnk_csv *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (size > CNK_CSV_MAX_BYTES)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: CSV larger than %zu bytes", name, CNK_CSV_MAX_BYTES);
    csv_parser p = {.ctx = ctx, .name = out->name, .text = text, .size = size, .line = 1};
    if (size >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    p.arena = malloc(size + 2);
    if (!p.arena) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory parsing %zu bytes of CSV", name, size);
    int rc = parse_all(&p, out);
    out->arena = p.arena;
    out->header = p.cells;
    out->row_lines = p.row_lines;
    if (!rc) {
        out->cells = p.cells + out->n_cols;
        out->n_rows = p.n_rows;
        rc = check_unique_header(ctx, out);
    }
    if (rc) cnk_csv_release(out);
    return rc;
}

int cnk_csv_read(cnk_ctx *ctx, const char *path, cnk_csv *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t size;
    int rc = cnk_read_file(ctx, path, CNK_CSV_MAX_BYTES, &data, &size);
    if (rc) return rc;
    rc = cnk_csv_parse(ctx, path, (const char *)data, size, out);
    free(data);
    return rc;
}

void cnk_csv_release(cnk_csv *csv)
{
    free(csv->header);
    free(csv->row_lines);
    free(csv->arena);
    char name[sizeof csv->name];
    memcpy(name, csv->name, sizeof name);
    memset(csv, 0, sizeof *csv);
    memcpy(csv->name, name, sizeof name);
}

const char *cnk_csv_cell(const cnk_csv *csv, size_t row, size_t col) { return csv->cells[row * csv->n_cols + col]; }

size_t cnk_csv_line(const cnk_csv *csv, size_t row) { return csv->row_lines[row]; }

int cnk_csv_find_column(const cnk_csv *csv, const char *name, size_t *col)
{
    for (size_t i = 0; i < csv->n_cols; i++)
        if (strcmp(csv->header[i], name) == 0) {
            *col = i;
            return 1;
        }
    return 0;
}

int cnk_csv_require_column(cnk_ctx *ctx, const cnk_csv *csv, const char *name, size_t *col)
{
    if (cnk_csv_find_column(csv, name, col)) return CNK_OK;
    return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: no column '%s' in the header", csv->name, csv->header_line, name);
}

/* 1 if p..end is decimal notation: sign? digits ('.' digits)? with a digit somewhere, then an exponent. */
static int is_decimal_syntax(const char *p, const char *end)
{
    if (p < end && (*p == '+' || *p == '-')) p++;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') p++, digits++;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        int exp_digits = 0;
        while (p < end && *p >= '0' && *p <= '9') p++, exp_digits++;
        if (!exp_digits) return 0;
    }
    return p == end;
}

/* Clinger's fast path: up to 15 significant digits and at most 22 decimals, no exponent. The mantissa and
 * 10^k are then exact doubles, so one correctly rounded division gives exactly strtod's answer, at a
 * fraction of its cost (pixel tables have tens of millions of cells). 0 if the text needs strtod. */
static int fast_decimal(const char *p, const char *end, double *value)
{
    static const double powers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int negative = *p == '-';
    if (*p == '+' || *p == '-') p++;
    uint64_t mantissa = 0;
    int digits = 0, decimals = -1;
    for (; p < end; p++) {
        if (*p == '.' && decimals < 0) {
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9') return 0;
        if (mantissa || *p != '0') digits++;
        if (digits > 15) return 0;
        mantissa = mantissa * 10 + (uint64_t)(*p - '0');
        if (decimals >= 0 && ++decimals > 22) return 0;
    }
    double v = (double)mantissa;
    if (decimals > 0) v /= powers[decimals];
    *value = negative ? -v : v;
    return 1;
}

const char *cnk_csv_number_problem(const char *text, double *value)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t') p++;
    const char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (p == end) return "is empty";
    /* strtod alone would also take "inf", "nan" and hex, which no feature table means. */
    if (!is_decimal_syntax(p, end)) return "is not a number";
    if (fast_decimal(p, end, value)) return NULL;
    errno = 0;
    double v = strtod(p, NULL);
    if (errno == ERANGE && fabs(v) > 1.0) return "is out of range";
    if (!isfinite(v)) return "is out of range";
    *value = v;
    return NULL;
}

int cnk_csv_get_double(cnk_ctx *ctx, const cnk_csv *csv, size_t row, size_t col, double *value)
{
    const char *text = cnk_csv_cell(csv, row, col);
    const char *problem = cnk_csv_number_problem(text, value);
    if (!problem) return CNK_OK;
    return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: column '%.100s': '%.40s' %s", csv->name, cnk_csv_line(csv, row),
                    csv->header[col], text, problem);
}

int cnk_csv_get_float(cnk_ctx *ctx, const cnk_csv *csv, size_t row, size_t col, float *value)
{
    double v;
    int rc = cnk_csv_get_double(ctx, csv, row, col, &v);
    if (rc) return rc;
    if (fabs(v) > FLT_MAX)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: column '%.100s': '%.40s' is out of float range", csv->name,
                        cnk_csv_line(csv, row), csv->header[col], cnk_csv_cell(csv, row, col));
    *value = (float)v;
    return CNK_OK;
}

int cnk_csv_needs_quotes(const char *field)
{
    size_t n = strlen(field);
    if (n && (field[0] == ' ' || field[n - 1] == ' ')) return 1;
    return strpbrk(field, ",\"\r\n") != NULL;
}

void cnk_csv_write_field(FILE *fp, const char *field)
{
    if (!cnk_csv_needs_quotes(field)) {
        fputs(field, fp);
        return;
    }
    fputc('"', fp);
    for (const char *c = field; *c; c++) {
        if (*c == '"') fputc('"', fp);
        fputc(*c, fp);
    }
    fputc('"', fp);
}

void cnk_csv_write_row(FILE *fp, const char *const *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i) fputc(',', fp);
        cnk_csv_write_field(fp, fields[i]);
    }
    fputc('\n', fp);
}
