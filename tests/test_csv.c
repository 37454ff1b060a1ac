/* Tests for pipeline/csv: RFC 4180 edge cases, line numbers in errors, strict numbers, the writer's round
 * trip, and the real GTZAN feature table.
 * test-libs: core pipeline */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "pipeline/csv.h"

static int parse(cnk_ctx *ctx, const char *text, cnk_csv *csv)
{
    return cnk_csv_parse(ctx, "t.csv", text, strlen(text), csv);
}

static void test_quotes_crlf_bom_and_lines(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    const char *text = "\xEF\xBB\xBF"
                       "name,note,label\r\n"
                       "\"a,b\",\"say \"\"hi\"\"\",x\r\n"
                       "\r\n"
                       "plain,\"two\r\nlines\",y\r\n"
                       "c,,\"\"\n"
                       "last,row,z";
    assert_int_equal(parse(&ctx, text, &csv), CNK_OK);
    assert_int_equal(csv.n_cols, 3);
    assert_int_equal(csv.n_rows, 4);
    assert_string_equal(csv.header[0], "name"); /* BOM stripped */
    assert_string_equal(cnk_csv_cell(&csv, 0, 0), "a,b");
    assert_string_equal(cnk_csv_cell(&csv, 0, 1), "say \"hi\"");
    assert_string_equal(cnk_csv_cell(&csv, 1, 1), "two\r\nlines");
    assert_string_equal(cnk_csv_cell(&csv, 2, 1), "");
    assert_string_equal(cnk_csv_cell(&csv, 2, 2), "");
    assert_string_equal(cnk_csv_cell(&csv, 3, 2), "z");
    assert_int_equal(csv.header_line, 1);
    assert_int_equal(cnk_csv_line(&csv, 0), 2);
    assert_int_equal(cnk_csv_line(&csv, 1), 4); /* line 3 is blank */
    assert_int_equal(cnk_csv_line(&csv, 2), 6); /* the quoted field spans lines 4-5 */
    assert_int_equal(cnk_csv_line(&csv, 3), 7);
    size_t col = 99;
    assert_true(cnk_csv_find_column(&csv, "label", &col));
    assert_int_equal(col, 2);
    assert_false(cnk_csv_find_column(&csv, "Label", &col));
    assert_int_equal(cnk_csv_require_column(&ctx, &csv, "path", &col), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "t.csv:1: no column 'path' in the header");
    cnk_csv_release(&csv);

    /* Lone CRs (old Mac files) also end records. */
    assert_int_equal(parse(&ctx, "a,b\r1,2\r3,4\r", &csv), CNK_OK);
    assert_int_equal(csv.n_rows, 2);
    assert_string_equal(cnk_csv_cell(&csv, 1, 1), "4");
    assert_int_equal(cnk_csv_line(&csv, 1), 3);
    cnk_csv_release(&csv);
}

static void expect_error(const char *text, const char *message)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(cnk_csv_parse(&ctx, "t.csv", text, strlen(text), &csv), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), message);
    assert_null(csv.cells);
    cnk_csv_release(&csv); /* must be harmless after a failure */
}

static void test_malformed_tables_name_the_line(void **state)
{
    (void)state;
    expect_error("a,b,c\n1,2,3\n4,5\n", "t.csv:3: 2 fields, but the header has 3");
    expect_error("a,b\n1,2,3\n", "t.csv:2: 3 fields, but the header has 2");
    expect_error("a,b,a\n1,2,3\n", "t.csv:1: duplicate column name 'a' in the header");
    expect_error("", "t.csv: empty file, expected a header row");
    expect_error("\n\r\n", "t.csv: empty file, expected a header row");
    expect_error("a,b\n1,\"open\n2,3\n", "t.csv:2: quoted field never closed");
    expect_error("a,b\n1,ab\"c\"\n", "t.csv:2: a quote inside an unquoted field (quote the whole field)");
    expect_error("a,b\n1,\"ab\"c\n", "t.csv:2: unexpected text after a closing quote");

    /* NUL bytes mean a binary file, not text with a truncated field. */
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(cnk_csv_parse(&ctx, "t.csv", "a,b\n1,x\0y\n", 10, &csv), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "t.csv:2: NUL byte in the text (not a CSV file?)");
}

static void test_header_only_is_an_empty_table(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(parse(&ctx, "x,label\n", &csv), CNK_OK);
    assert_int_equal(csv.n_cols, 2);
    assert_int_equal(csv.n_rows, 0);
    cnk_csv_release(&csv);
    /* A trailing comma is one more (empty) field. */
    assert_int_equal(parse(&ctx, "x,\n1,", &csv), CNK_OK);
    assert_int_equal(csv.n_cols, 2);
    assert_string_equal(csv.header[1], "");
    assert_string_equal(cnk_csv_cell(&csv, 0, 1), "");
    cnk_csv_release(&csv);
}

static void test_strict_numbers(void **state)
{
    (void)state;
    double v = -1;
    assert_null(cnk_csv_number_problem("2.5", &v));
    assert_true(v == 2.5);
    assert_null(cnk_csv_number_problem(" -1e3 ", &v));
    assert_true(v == -1000.0);
    assert_null(cnk_csv_number_problem(".5", &v));
    assert_true(v == 0.5);
    assert_null(cnk_csv_number_problem("7.", &v));
    assert_true(v == 7.0);
    assert_null(cnk_csv_number_problem("+3E-2", &v));
    assert_true(v == 0.03);
    assert_null(cnk_csv_number_problem("1e-400", &v)); /* underflow is a tiny number, not an error */
    assert_true(v == 0.0);
    assert_string_equal(cnk_csv_number_problem("", &v), "is empty");
    assert_string_equal(cnk_csv_number_problem("  ", &v), "is empty");
    assert_string_equal(cnk_csv_number_problem("1e400", &v), "is out of range");
    assert_string_equal(cnk_csv_number_problem("-1e400", &v), "is out of range");
    const char *not_numbers[] = {"abc", "nan", "inf", "-inf", "0x10", "1.5e", "1,5", ".", "-", "1 2", "e5", "--1"};
    for (size_t i = 0; i < sizeof not_numbers / sizeof *not_numbers; i++)
        assert_string_equal(cnk_csv_number_problem(not_numbers[i], &v), "is not a number");

    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(parse(&ctx, "f1,f2,label\n1,2,a\n3,1e400,b\n5,,c\n1e39,x,d\n", &csv), CNK_OK);
    float f;
    assert_int_equal(cnk_csv_get_float(&ctx, &csv, 0, 1, &f), CNK_OK);
    assert_true(f == 2.0f);
    assert_int_equal(cnk_csv_get_float(&ctx, &csv, 1, 1, &f), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "t.csv:3: column 'f2': '1e400' is out of range");
    assert_int_equal(cnk_csv_get_double(&ctx, &csv, 2, 1, &v), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "t.csv:4: column 'f2': '' is empty");
    assert_int_equal(cnk_csv_get_float(&ctx, &csv, 3, 2, &f), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "t.csv:5: column 'label': 'd' is not a number");
    assert_int_equal(cnk_csv_get_double(&ctx, &csv, 3, 0, &v), CNK_OK); /* a fine double ... */
    assert_int_equal(cnk_csv_get_float(&ctx, &csv, 3, 0, &f), CNK_ERR_INPUT); /* ... but not a float */
    assert_string_equal(cnk_error(&ctx), "t.csv:5: column 'f1': '1e39' is out of float range");
    cnk_csv_release(&csv);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "csv_writer");
    snprintf(path, sizeof path, "%s/out.csv", dir);
    const char *header[] = {"path", "label", "predicted"};
    const char *rows[][3] = {{"a/plain.wav", "cat", "dog"},
                             {"b/with,comma.wav", "say \"x\"", "two\nlines"},
                             {" padded ", "", "crlf\r\n"}};
    assert_false(cnk_csv_needs_quotes("a/plain.wav"));
    assert_true(cnk_csv_needs_quotes("with,comma"));
    assert_true(cnk_csv_needs_quotes(" padded "));
    cnk_afile af;
    assert_int_equal(cnk_afile_open(&ctx, &af, path), CNK_OK);
    cnk_csv_write_row(af.fp, header, 3);
    for (int r = 0; r < 3; r++) cnk_csv_write_row(af.fp, rows[r], 3);
    assert_int_equal(cnk_afile_commit(&ctx, &af), CNK_OK);

    unsigned char *bytes;
    size_t size;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &bytes, &size), CNK_OK);
    assert_string_equal((char *)bytes, "path,label,predicted\n"
                                       "a/plain.wav,cat,dog\n"
                                       "\"b/with,comma.wav\",\"say \"\"x\"\"\",\"two\nlines\"\n"
                                       "\" padded \",,\"crlf\r\n\"\n");
    free(bytes);

    cnk_csv csv;
    assert_int_equal(cnk_csv_read(&ctx, path, &csv), CNK_OK);
    assert_int_equal(csv.n_rows, 3);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) assert_string_equal(cnk_csv_cell(&csv, r, c), rows[r][c]);
    assert_int_equal(cnk_csv_line(&csv, 2), 5);
    cnk_csv_release(&csv);
    tu_rmtree(dir);
}

static void test_missing_file_is_an_io_error(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(cnk_csv_read(&ctx, "/nonexistent/x.csv", &csv), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "/nonexistent/x.csv"));
    cnk_csv_release(&csv);
}

/* Values checked against Python's csv module on the same file. */
static void test_real_gtzan_features(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    tu_shared(path, sizeof path, "datasets/gtzan-mini/features_30_sec.csv");
    cnk_csv csv;
    assert_int_equal(cnk_csv_read(&ctx, path, &csv), CNK_OK);
    assert_int_equal(csv.n_cols, 60);
    assert_int_equal(csv.n_rows, 1000);
    assert_string_equal(csv.header[0], "filename");
    assert_string_equal(csv.header[59], "label");
    assert_string_equal(cnk_csv_cell(&csv, 0, 0), "blues.00000.au");
    assert_string_equal(cnk_csv_cell(&csv, 999, 59), "rock");
    double v;
    assert_int_equal(cnk_csv_get_double(&ctx, &csv, 0, 2, &v), CNK_OK);
    assert_true(v == 0.35008811950683594);
    assert_int_equal(cnk_csv_get_double(&ctx, &csv, 999, 2, &v), CNK_OK);
    assert_true(v == 0.3584013283252716);
    assert_int_equal(cnk_csv_get_double(&ctx, &csv, 0, 0, &v), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "features_30_sec.csv:2: column 'filename': 'blues.00000.au' is not"));
    assert_int_equal(cnk_csv_line(&csv, 999), 1001);
    cnk_csv_release(&csv);
}

/* Random damage to a valid table (bytes replaced by the characters that matter to the grammar, cut short)
 * never crashes the parser; whatever it accepts is a consistent table. */
static void test_mutation_fuzz(void **state)
{
    (void)state;
    const char *seed_text = "\xEF\xBB\xBFname,x,label\r\n\"a,b\",1.5,\"q\"\"q\"\r\nc,2,\"multi\nline\"\n\nd,3,z";
    size_t n = strlen(seed_text);
    const char specials[] = {',', '"', '\r', '\n', 'a', '1', '\0', (char)0xEF};
    char *buf = malloc(n + 1);
    cnk_rng rng;
    cnk_rng_seed(&rng, 99, 0);
    int accepted = 0, rounds = tu_sanitized() ? 3000 : 20000;
    for (int round = 0; round < rounds; round++) {
        memcpy(buf, seed_text, n);
        size_t len = n;
        int edits = 1 + (int)cnk_rng_below(&rng, 4);
        for (int e = 0; e < edits; e++) buf[cnk_rng_below(&rng, n)] = specials[cnk_rng_below(&rng, sizeof specials)];
        if (cnk_rng_below(&rng, 4) == 0) len = (size_t)cnk_rng_below(&rng, n + 1);
        cnk_ctx ctx;
        tu_ctx(&ctx);
        cnk_csv csv;
        int rc = cnk_csv_parse(&ctx, "fuzz.csv", buf, len, &csv);
        if (rc == CNK_OK) {
            accepted++;
            assert_true(csv.n_cols >= 1);
            for (size_t r = 0; r < csv.n_rows; r++) {
                assert_true(cnk_csv_line(&csv, r) > csv.header_line);
                for (size_t c = 0; c < csv.n_cols; c++) assert_true(strlen(cnk_csv_cell(&csv, r, c)) <= len);
            }
        } else {
            assert_int_equal(rc, CNK_ERR_INPUT);
            assert_non_null(strstr(cnk_error(&ctx), "fuzz.csv"));
            assert_null(csv.cells);
        }
        cnk_csv_release(&csv);
    }
    assert_true(accepted > rounds / 20 && accepted < rounds); /* both paths exercised */
    free(buf);
}

/* A header of more than CNK_CSV_MAX_COLUMNS fields is refused with a message, not a huge allocation. */
static void test_too_many_columns(void **state)
{
    (void)state;
    size_t n = CNK_CSV_MAX_COLUMNS + 1;
    char *text = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) text[2 * i] = 'a', text[2 * i + 1] = ',';
    text[2 * n - 1] = '\n';
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_csv csv;
    assert_int_equal(cnk_csv_parse(&ctx, "wide.csv", text, 2 * n, &csv), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "wide.csv:1: more than 1048576 fields in a record");
    free(text);
}

/* The number parser's shortcut for plain decimals must give strtod's double bit for bit. */
static void test_numbers_equal_strtod(void **state)
{
    (void)state;
    cnk_rng rng;
    cnk_rng_seed(&rng, 5, 0);
    char text[80];
    int rounds = tu_sanitized() ? 20000 : 200000;
    for (int round = 0; round < rounds; round++) {
        size_t len = 0;
        if (cnk_rng_below(&rng, 2)) text[len++] = '-';
        int int_digits = (int)cnk_rng_below(&rng, 18), frac_digits = (int)cnk_rng_below(&rng, 26);
        for (int d = 0; d < int_digits; d++) text[len++] = (char)('0' + cnk_rng_below(&rng, 10));
        if (frac_digits || !int_digits) {
            text[len++] = '.';
            for (int d = 0; d < frac_digits || (!int_digits && d == 0); d++)
                text[len++] = (char)('0' + cnk_rng_below(&rng, 10));
        }
        text[len] = '\0';
        double mine = 0, libc = strtod(text, NULL);
        assert_null(cnk_csv_number_problem(text, &mine));
        if (memcmp(&mine, &libc, sizeof mine) != 0) fail_msg("%s: %.17g, strtod %.17g", text, mine, libc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quotes_crlf_bom_and_lines),
        cmocka_unit_test(test_malformed_tables_name_the_line),
        cmocka_unit_test(test_header_only_is_an_empty_table),
        cmocka_unit_test(test_strict_numbers),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_missing_file_is_an_io_error),
        cmocka_unit_test(test_real_gtzan_features),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_numbers_equal_strtod),
        cmocka_unit_test(test_too_many_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
