/* Tests for pipeline/idx and the IDX dataset loader: hand-made files of every element type, gzip and plain,
 * truncated and hostile headers, and the real Fashion-MNIST files (Debian's dataset-fashion-mnist) when
 * installed, checked against numpy's reading of the same files.
 * test-libs: core pipeline */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "pipeline/dataset.h"
#include "pipeline/idx.h"

static void write_bytes(const char *path, const unsigned char *bytes, size_t n)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, bytes, n), CNK_OK);
}

/* A plain file written byte by byte from the format description, independent of cnk_idx_write_u8. */
static void test_reads_handmade_files_of_each_type(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "idx_types");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_idx_reader r;

    /* 2 records of 2x3 uint8 */
    const unsigned char u8[] = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                                1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255};
    snprintf(path, sizeof path, "%s/u8-idx3-ubyte", dir);
    write_bytes(path, u8, sizeof u8);
    assert_int_equal(cnk_idx_open(&ctx, path, &r), CNK_OK);
    assert_int_equal(r.type, CNK_IDX_U8);
    assert_int_equal(r.n_records, 2);
    assert_int_equal(r.record_values, 6);
    unsigned char got[12];
    assert_int_equal(cnk_idx_read_bytes(&ctx, &r, 1, got), CNK_OK);
    assert_memory_equal(got, u8 + 16, 6);
    float f[6];
    assert_int_equal(cnk_idx_read_floats(&ctx, &r, 1, f), CNK_OK);
    assert_true(f[0] == 250.0f && f[5] == 255.0f);
    assert_int_equal(cnk_idx_read_bytes(&ctx, &r, 1, got), CNK_ERR_ARG); /* none left */
    cnk_idx_close(&r);

    /* int16 big-endian: -2, 300 */
    const unsigned char i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x2C};
    snprintf(path, sizeof path, "%s/i16-idx1", dir);
    write_bytes(path, i16, sizeof i16);
    assert_int_equal(cnk_idx_open(&ctx, path, &r), CNK_OK);
    assert_int_equal(cnk_idx_read_floats(&ctx, &r, 2, f), CNK_OK);
    assert_true(f[0] == -2.0f && f[1] == 300.0f);
    assert_int_equal(cnk_idx_read_bytes(&ctx, &r, 0, got), CNK_ERR_UNSUPPORTED); /* not a byte file */
    cnk_idx_close(&r);

    /* float32 big-endian 1.5 (0x3FC00000), int32 -70000 (0xFFFEEE90), float64 -0.25 (0xBFD0000000000000),
     * int8 -128 */
    const unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0};
    const unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 1, 0xFF, 0xFE, 0xEE, 0x90};
    const unsigned char f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0xBF, 0xD0, 0, 0, 0, 0, 0, 0};
    const unsigned char i8[] = {0, 0, 0x09, 1, 0, 0, 0, 1, 0x80};
    const struct { const unsigned char *bytes; size_t n; float want; } cases[] = {
        {f32, sizeof f32, 1.5f}, {i32, sizeof i32, -70000.0f}, {f64, sizeof f64, -0.25f}, {i8, sizeof i8, -128.0f}};
    for (size_t c = 0; c < 4; c++) {
        snprintf(path, sizeof path, "%s/case%zu-idx1", dir, c);
        write_bytes(path, cases[c].bytes, cases[c].n);
        assert_int_equal(cnk_idx_open(&ctx, path, &r), CNK_OK);
        assert_int_equal(cnk_idx_read_floats(&ctx, &r, 1, f), CNK_OK);
        assert_true(f[0] == cases[c].want);
        cnk_idx_close(&r);
    }
    tu_rmtree(dir);
}

static void expect_open_error(const char *dir, const unsigned char *bytes, size_t n, int status, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/bad-idx", dir);
    write_bytes(path, bytes, n);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_idx_reader r;
    assert_int_equal(cnk_idx_open(&ctx, path, &r), status);
    assert_non_null(strstr(cnk_error(&ctx), path));
    if (!strstr(cnk_error(&ctx), text)) fail_msg("'%s' lacks '%s'", cnk_error(&ctx), text);
    cnk_idx_close(&r);
}

static void test_bad_headers_and_truncation(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "idx_bad");
    const unsigned char not_idx[] = {'P', 'K', 3, 4, 0, 0};
    expect_open_error(dir, not_idx, sizeof not_idx, CNK_ERR_INPUT, "not an IDX file");
    expect_open_error(dir, not_idx, 2, CNK_ERR_INPUT, "no 4-byte header");
    const unsigned char bad_type[] = {0, 0, 0x07, 1, 0, 0, 0, 1, 0};
    expect_open_error(dir, bad_type, sizeof bad_type, CNK_ERR_INPUT, "not an IDX file");
    const unsigned char many_dims[] = {0, 0, 0x08, 9, 0, 0, 0, 1};
    expect_open_error(dir, many_dims, sizeof many_dims, CNK_ERR_UNSUPPORTED, "9 dimensions");
    const unsigned char zero_dim[] = {0, 0, 0x08, 2, 0, 0, 0, 1, 0, 0, 0, 0};
    expect_open_error(dir, zero_dim, sizeof zero_dim, CNK_ERR_INPUT, "dimension 1 is 0");
    const unsigned char short_header[] = {0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0};
    expect_open_error(dir, short_header, sizeof short_header, CNK_ERR_INPUT, "truncated IDX header");
    /* 2^32-1 x 2^32-1 x 2^32-1 doubles: refused before any allocation */
    const unsigned char huge[] = {0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    expect_open_error(dir, huge, sizeof huge, CNK_ERR_INPUT, "promises more than");

    /* A header for 3 records of 4 bytes followed by 9 bytes: the third record is cut short. */
    const unsigned char truncated[] = {0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    snprintf(path, sizeof path, "%s/short-idx", dir);
    write_bytes(path, truncated, sizeof truncated);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_idx_reader r;
    assert_int_equal(cnk_idx_open(&ctx, path, &r), CNK_OK);
    unsigned char out[12];
    assert_int_equal(cnk_idx_read_bytes(&ctx, &r, 3, out), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "truncated at record 2 of 3"));
    cnk_idx_close(&r);
    assert_int_equal(cnk_idx_open(&ctx, "/nonexistent/x-idx3-ubyte", &r), CNK_ERR_IO);
    tu_rmtree(dir);
}

/* Writes a tiny MNIST-like folder: 7 train + 4 test images of 3x4, labels 0..2 (train images gzip'd). */
static void write_tiny_mnist(const char *dir, unsigned char *train_pixels, unsigned char *test_pixels)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4200];
    for (int i = 0; i < 7 * 12; i++) train_pixels[i] = (unsigned char)(i * 7 % 256);
    for (int i = 0; i < 4 * 12; i++) test_pixels[i] = (unsigned char)(255 - i);
    const unsigned char train_labels[7] = {0, 1, 2, 0, 1, 2, 2}, test_labels[4] = {2, 1, 0, 0};
    const size_t train_dims[3] = {7, 3, 4}, test_dims[3] = {4, 3, 4}, n7[1] = {7}, n4[1] = {4};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, path, train_pixels, 3, train_dims, 1), CNK_OK);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, path, train_labels, 1, n7, 0), CNK_OK);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, path, test_pixels, 3, test_dims, 0), CNK_OK);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, path, test_labels, 1, n4, 1), CNK_OK);
}

static void test_tiny_dataset_gzip_and_plain(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "idx_tiny");
    unsigned char train_pixels[7 * 12], test_pixels[4 * 12];
    write_tiny_mnist(dir, train_pixels, test_pixels);
    /* the .gz file really is gzip (magic 1f 8b), the other really is not */
    unsigned char *bytes;
    size_t size;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    assert_int_equal(cnk_read_file(&ctx, path, 0, &bytes, &size), CNK_OK);
    assert_true(bytes[0] == 0x1f && bytes[1] == 0x8b);
    free(bytes);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_int_equal(cnk_read_file(&ctx, path, 0, &bytes, &size), CNK_OK);
    assert_int_equal(size, 16 + 4 * 12);
    assert_true(bytes[2] == 0x08 && bytes[3] == 3 && bytes[7] == 4 && bytes[11] == 3 && bytes[15] == 4);
    free(bytes);

    cnk_dataset ds;
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    assert_int_equal(cnk_dataset_open(&ctx, dir, &opts, &ds), CNK_OK); /* IDX found by its file names */
    assert_int_equal(ds.kind, CNK_INPUT_IDX);
    assert_int_equal(ds.n_items, 11);
    assert_int_equal(ds.n_classes, 3);
    assert_string_equal(ds.classes[2], "2");
    assert_true(ds.presplit);
    assert_int_equal(ds.item_size, 12);
    assert_int_equal(ds.item_ndim, 3);
    assert_true(ds.item_shape[0] == 1 && ds.item_shape[1] == 3 && ds.item_shape[2] == 4);
    assert_int_equal(ds.items[6].label, 2);
    assert_int_equal(ds.items[6].part, CNK_PART_TRAIN);
    assert_int_equal(ds.items[7].label, 2);
    assert_int_equal(ds.items[7].part, CNK_PART_TEST);
    assert_string_equal(ds.items[8].name, "test1");
    float values[12];
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 5, values), CNK_OK);
    for (int v = 0; v < 12; v++) assert_true(values[v] == (float)train_pixels[5 * 12 + v]);
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 10, values), CNK_OK);
    for (int v = 0; v < 12; v++) assert_true(values[v] == (float)test_pixels[3 * 12 + v]);
    size_t counts[3];
    cnk_dataset_class_counts(&ds, CNK_PART_TRAIN, counts);
    assert_true(counts[0] == 2 && counts[1] == 2 && counts[2] == 3);
    cnk_dataset_release(&ds);

    /* One images file named directly: its labels and its test pair are found beside it. */
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    assert_int_equal(cnk_dataset_open(&ctx, path, &opts, &ds), CNK_OK);
    assert_int_equal(ds.n_items, 11);
    assert_true(ds.presplit);
    assert_int_equal(ds.items[10].part, CNK_PART_TEST);
    cnk_dataset_release(&ds);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_int_equal(cnk_dataset_open(&ctx, path, &opts, &ds), CNK_OK); /* a lone set: to be split */
    assert_int_equal(ds.n_items, 4);
    assert_false(ds.presplit);
    assert_int_equal(ds.items[0].part, CNK_PART_NONE);
    assert_int_equal(ds.items[0].label, 2);
    cnk_dataset_release(&ds);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    char moved[4200];
    snprintf(moved, sizeof moved, "%s/elsewhere.gz", dir);
    assert_int_equal(rename(path, moved), 0);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_int_equal(cnk_dataset_open(&ctx, path, &opts, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "t10k-images-idx3-ubyte: no labels file beside it"));
    cnk_dataset_release(&ds);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    assert_int_equal(rename(moved, path), 0);

    /* A label file that does not match the image count. */
    const size_t n3[1] = {3};
    const unsigned char three[3] = {0, 1, 2};
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, path, three, 1, n3, 1), CNK_OK);
    assert_int_equal(cnk_dataset_open(&ctx, dir, &opts, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "3 labels for 4 images"));
    cnk_dataset_release(&ds);
    /* A missing test pair. */
    unlink(path);
    assert_int_equal(cnk_dataset_load_idx_dir(&ctx, dir, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "no test-label file"));
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

/* A value from tests/fixtures/datasets/reference.txt (written by tests/ref/gen_datasets.py with numpy). */
static long reference(const char *name)
{
    char path[4096], line[256], key[128];
    FILE *fp = fopen(tu_fixture(path, sizeof path, "datasets/reference.txt"), "r");
    assert_non_null(fp);
    long value = 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, fp))
        found = sscanf(line, "%127s %ld", key, &value) == 2 && strcmp(key, name) == 0;
    fclose(fp);
    if (!found) fail_msg("no '%s' in reference.txt: rerun tests/ref/gen_datasets.py", name);
    return value;
}

static long reference2(const char *split, const char *what)
{
    char name[128];
    snprintf(name, sizeof name, "fashion_%s_%s", split, what);
    return reference(name);
}

/* Checks one split's items [first, first + count) against numpy's reading of the same file. */
static void check_fashion_split(const cnk_dataset *ds, size_t first, const char *split, int part)
{
    size_t count = (size_t)reference2(split, "count");
    const cnk_item *items = ds->items + first;
    assert_int_equal(items[0].label, reference2(split, "first_label"));
    assert_int_equal(items[1].label, reference2(split, "second_label"));
    assert_int_equal(items[count - 1].label, reference2(split, "last_label"));
    size_t counts[10];
    cnk_dataset_class_counts(ds, part, counts);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], reference2(split, "per_class"));
    const unsigned char *pixels = ds->bytes + items[0].row * 784;
    long first_sum = 0, last_sum = 0, all = 0;
    for (int v = 0; v < 784; v++) first_sum += pixels[v], last_sum += pixels[(count - 1) * 784 + v];
    for (size_t i = 0; i < count * 784; i++) all = (all + pixels[i]) % 1000003;
    assert_int_equal(first_sum, reference2(split, "first_sum"));
    assert_int_equal(last_sum, reference2(split, "last_sum"));
    assert_int_equal(pixels[14 * 28 + 14], reference2(split, "first_centre"));
    assert_int_equal(all, reference2(split, "sum_mod_1000003"));
}

/* The real files of Debian's dataset-fashion-mnist (60,000 + 10,000 gzip'd images). */
static void test_real_fashion_mnist(void **state)
{
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (!cnk_is_file("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")) {
        print_message("dataset-fashion-mnist not installed: skipping the real-data check\n");
        skip();
    }
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds = {0};
    if (tu_sanitized()) { /* the 60,000 training images take long under ASan: the test set only */
        assert_int_equal(cnk_dataset_load_idx(&ctx, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                              "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
                                              CNK_PART_TEST, &ds),
                         CNK_OK);
    } else {
        assert_int_equal(cnk_dataset_load_idx_dir(&ctx, dir, &ds), CNK_OK);
    }
    size_t n_train = tu_sanitized() ? 0 : (size_t)reference("fashion_train_count");
    assert_int_equal(ds.n_items, n_train + (size_t)reference("fashion_t10k_count"));
    assert_int_equal(ds.n_classes, 10);
    assert_int_equal(ds.item_size, 784);
    assert_true(ds.item_shape[0] == 1 && ds.item_shape[1] == 28 && ds.item_shape[2] == 28);
    check_fashion_split(&ds, n_train, "t10k", CNK_PART_TEST);
    if (n_train) check_fashion_split(&ds, 0, "train", CNK_PART_TRAIN);
    cnk_dataset_release(&ds);
}

/* A gzip file cut at every length: each cut is an error naming the file (or, never, a crash). */
static void test_truncated_gzip_at_every_length(void **state)
{
    (void)state;
    char dir[4096], path[4200], cut[4200];
    tu_tmpdir(dir, sizeof dir, "idx_gzcut");
    unsigned char train_pixels[7 * 12], test_pixels[4 * 12];
    write_tiny_mnist(dir, train_pixels, test_pixels);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(cut, sizeof cut, "%s/cut-idx3-ubyte.gz", dir);
    unsigned char *bytes;
    size_t size;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &bytes, &size), CNK_OK);
    for (size_t len = 0; len < size; len++) {
        assert_int_equal(cnk_write_file_atomic(&ctx, cut, bytes, len), CNK_OK);
        cnk_idx_reader r;
        int rc = cnk_idx_open(&ctx, cut, &r);
        unsigned char out[7 * 12];
        if (rc == CNK_OK) rc = cnk_idx_read_bytes(&ctx, &r, 7, out);
        cnk_idx_close(&r);
        /* even a cut inside the gzip trailer (CRC, length), after all the data, is caught */
        assert_int_equal(rc, CNK_ERR_INPUT);
        assert_non_null(strstr(cnk_error(&ctx), cut));
    }
    /* A flipped bit in the compressed data: refused (by inflate or by the CRC at the end). */
    for (size_t pos = 10; pos < size - 8; pos += 3) {
        bytes[pos] ^= 0x04;
        assert_int_equal(cnk_write_file_atomic(&ctx, cut, bytes, size), CNK_OK);
        bytes[pos] ^= 0x04;
        cnk_idx_reader r;
        int rc = cnk_idx_open(&ctx, cut, &r);
        unsigned char out[7 * 12];
        if (rc == CNK_OK) rc = cnk_idx_read_bytes(&ctx, &r, 7, out);
        cnk_idx_close(&r);
        assert_int_not_equal(rc, CNK_OK);
    }
    /* Data beyond what the header promises. */
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    free(bytes);
    assert_int_equal(cnk_read_file(&ctx, path, 0, &bytes, &size), CNK_OK);
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, bytes, size);
    longer[size] = 0;
    assert_int_equal(cnk_write_file_atomic(&ctx, cut, longer, size + 1), CNK_OK);
    cnk_idx_reader r;
    assert_int_equal(cnk_idx_open(&ctx, cut, &r), CNK_OK);
    unsigned char out[4 * 12];
    assert_int_equal(cnk_idx_read_bytes(&ctx, &r, 4, out), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "data after the last of 4 records"));
    cnk_idx_close(&r);
    free(longer);
    free(bytes);
    tu_rmtree(dir);
}

/* More than 10 labels: class names are zero-padded so that bytewise order is numeric order. */
static void test_many_classes_are_zero_padded(void **state)
{
    (void)state;
    char dir[4096], images[4200], labels[4200];
    tu_tmpdir(dir, sizeof dir, "idx_many");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    unsigned char pixels[12 * 4], label_values[12];
    for (int i = 0; i < 12; i++) label_values[i] = (unsigned char)(11 - i);
    for (int i = 0; i < 48; i++) pixels[i] = (unsigned char)i;
    const size_t dims[3] = {12, 2, 2}, n[1] = {12};
    snprintf(images, sizeof images, "%s/x-images-idx3-ubyte", dir);
    snprintf(labels, sizeof labels, "%s/x-labels-idx1-ubyte", dir);
    assert_int_equal(cnk_idx_write_u8(&ctx, images, pixels, 3, dims, 0), CNK_OK);
    assert_int_equal(cnk_idx_write_u8(&ctx, labels, label_values, 1, n, 0), CNK_OK);
    cnk_dataset ds = {0};
    assert_int_equal(cnk_dataset_load_idx(&ctx, images, labels, CNK_PART_TRAIN, &ds), CNK_OK);
    assert_int_equal(ds.n_classes, 12);
    assert_string_equal(ds.classes[0], "00");
    assert_string_equal(ds.classes[11], "11");
    for (int k = 1; k < 12; k++) assert_true(strcmp(ds.classes[k - 1], ds.classes[k]) < 0);
    assert_int_equal(ds.items[0].label, 11);
    /* A second file of another image size cannot join. */
    const size_t other[3] = {12, 4, 1};
    assert_int_equal(cnk_idx_write_u8(&ctx, images, pixels, 3, other, 0), CNK_OK);
    assert_int_equal(cnk_dataset_load_idx(&ctx, images, labels, CNK_PART_TEST, &ds), CNK_OK); /* same 4 values */
    const size_t bigger[3] = {6, 2, 4};
    assert_int_equal(cnk_idx_write_u8(&ctx, images, pixels, 3, bigger, 0), CNK_OK);
    const size_t six[1] = {6};
    assert_int_equal(cnk_idx_write_u8(&ctx, labels, label_values, 1, six, 0), CNK_OK);
    assert_int_equal(cnk_dataset_load_idx(&ctx, images, labels, CNK_PART_TEST, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "images of 8 values, the dataset's have 4"));
    assert_int_equal(ds.n_items, 24);
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_handmade_files_of_each_type),
        cmocka_unit_test(test_bad_headers_and_truncation),
        cmocka_unit_test(test_tiny_dataset_gzip_and_plain),
        cmocka_unit_test(test_real_fashion_mnist),
        cmocka_unit_test(test_truncated_gzip_at_every_length),
        cmocka_unit_test(test_many_classes_are_zero_padded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
