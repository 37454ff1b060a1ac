/* Tests for nn/modelfile: .cnk round trip, and that every truncation, every flipped byte, a foreign file, a
 * newer version and mismatched counts are refused with a one-line message naming the file (never a crash).
 * test-libs: core nn */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/atomic_file.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/modelfile.h"

static const char *const tiny_cfg = "[input]\nname = x\nshape = 1x6x5\n"
                                    "[conv2d]\nname = conv\nfilters = 3\nsize = 3\npadding = same\nbias = 0\n"
                                    "[batchnorm]\nname = bn\nactivation = relu\n"
                                    "[global_avgpool]\nname = gap\n"
                                    "[dense]\nname = logits\nunits = 2\n";

static char *xstrdup(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    assert_non_null(d);
    strcpy(d, s);
    return d;
}

/* A model of tiny_cfg with recognisable values: params[i] = i * 0.25 - 3, buffers[i] = 1 + i. */
static void make_tiny(cnk_modelfile *mf)
{
    cnk_modelfile_init(mf);
    mf->arch_text = xstrdup(tiny_cfg);
    mf->n_classes = 2;
    mf->class_names = malloc(2 * sizeof *mf->class_names);
    assert_non_null(mf->class_names);
    mf->class_names[0] = xstrdup("blues");
    mf->class_names[1] = xstrdup("hip hop (ünïcode)");
    mf->preprocess = xstrdup("input=mel\nsample_rate=22050\nn_fft=2048\nhop=512\nn_mels=128\n");
    mf->n_params = 27 + 6 + 6 + 2;
    mf->n_buffers = 6;
    mf->params = malloc(mf->n_params * sizeof(float));
    mf->buffers = malloc(mf->n_buffers * sizeof(float));
    assert_non_null(mf->params);
    assert_non_null(mf->buffers);
    for (size_t i = 0; i < mf->n_params; i++) mf->params[i] = (float)i * 0.25f - 3.0f;
    for (size_t i = 0; i < mf->n_buffers; i++) mf->buffers[i] = 1.0f + (float)i;
}

static void assert_same_model(const cnk_modelfile *a, const cnk_modelfile *b)
{
    assert_string_equal(a->arch_text, b->arch_text);
    assert_int_equal(a->n_classes, b->n_classes);
    for (int i = 0; i < a->n_classes; i++) assert_string_equal(a->class_names[i], b->class_names[i]);
    assert_string_equal(a->preprocess ? a->preprocess : "", b->preprocess);
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->n_buffers, b->n_buffers);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_memory_equal(a->buffers, b->buffers, a->n_buffers * sizeof(float));
}

static unsigned char *slurp(const char *path, size_t *size)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    unsigned char *data;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &data, size), CNK_OK);
    return data;
}

static void test_round_trip(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "modelfile");
    snprintf(path, sizeof path, "%s/tiny.cnk", dir);
    cnk_modelfile mf, back;
    make_tiny(&mf);
    int rc = cnk_modelfile_write(&ctx, path, &mf);
    if (rc) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(cnk_modelfile_read(&ctx, path, &back), CNK_OK);
    assert_same_model(&mf, &back);
    /* The layout of the header is what nn/modelfile.h documents. */
    size_t size;
    unsigned char *data = slurp(path, &size);
    unsigned char header[16] = "CNKMODEL";
    header[8] = CNK_MODELFILE_VERSION, header[12] = 5; /* u32 little-endian version, then the section count */
    assert_memory_equal(data, header, 16);
    assert_int_equal(crc32(0, data, 16), (uLong)data[16] | (uLong)data[17] << 8 | (uLong)data[18] << 16 |
                                             (uLong)data[19] << 24);
    assert_memory_equal(data + 20, "ARCH", 4);
    free(data);
    /* The arch comes back parsed; kv lookups work. */
    cnk_arch arch;
    assert_int_equal(cnk_modelfile_arch(&ctx, &back, &arch), CNK_OK);
    assert_int_equal(arch.n_params, back.n_params);
    cnk_arch_release(&arch);
    char value[64];
    assert_int_equal(cnk_kv_get(&ctx, back.preprocess, "hop", value, sizeof value), CNK_OK);
    assert_string_equal(value, "512");
    assert_int_equal(cnk_kv_get(&ctx, back.preprocess, "n_mels", value, sizeof value), CNK_OK);
    assert_string_equal(value, "128");
    assert_int_equal(cnk_kv_get(&ctx, back.preprocess, "n_mel", value, sizeof value), CNK_ERR_INPUT);
    assert_int_equal(cnk_kv_get(&ctx, back.preprocess, "input", value, 3), CNK_ERR_INPUT); /* too long */
    cnk_modelfile_release(&back);
    /* Overwriting an existing file works and leaves no temporary files behind. */
    mf.params[0] = 42.0f;
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, path, &back), CNK_OK);
    assert_true(back.params[0] == 42.0f);
    cnk_modelfile_release(&back);
    assert_int_equal(tu_system("test $(ls -A '%s' | wc -l) -eq 1", dir), 0);
    cnk_modelfile_release(&mf);
    tu_rmtree(dir);
}

static void expect_refused(const unsigned char *data, size_t size, const char *needle, const char *what)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    int rc = cnk_modelfile_read_mem(&ctx, "m.cnk", data, size, &mf);
    if (rc == CNK_OK) fail_msg("%s: accepted", what);
    if (strncmp(cnk_error(&ctx), "m.cnk", 5) != 0 || strchr(cnk_error(&ctx), '\n') ||
        (needle && !strstr(cnk_error(&ctx), needle)))
        fail_msg("%s: message '%s' (want the file name%s%s)", what, cnk_error(&ctx), needle ? " and " : "",
                 needle ? needle : "");
    assert_null(mf.params);
    assert_null(mf.arch_text);
}

static void test_every_truncation_and_flip_is_refused(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "modelfile-damage");
    snprintf(path, sizeof path, "%s/tiny.cnk", dir);
    cnk_modelfile mf;
    make_tiny(&mf);
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_OK);
    cnk_modelfile_release(&mf);
    size_t size;
    unsigned char *data = slurp(path, &size);
    char what[64];
    for (size_t n = 0; n < size; n++) {
        snprintf(what, sizeof what, "truncated to %zu", n);
        expect_refused(data, n, NULL, what);
    }
    unsigned char *copy = malloc(size + 1);
    assert_non_null(copy);
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit += tu_sanitized() ? 7 : 1) {
            memcpy(copy, data, size);
            copy[i] ^= (unsigned char)(1u << bit);
            snprintf(what, sizeof what, "bit %d of byte %zu flipped", bit, i);
            expect_refused(copy, size, NULL, what);
        }
    /* An extra byte at the end. */
    memcpy(copy, data, size);
    copy[size] = 0;
    expect_refused(copy, size + 1, "unexpected bytes", "trailing byte");
    /* Through the file API too: a truncated file on disk. */
    assert_int_equal(cnk_write_file_atomic(&ctx, path, data, size / 2), CNK_OK);
    cnk_modelfile back;
    assert_int_equal(cnk_modelfile_read(&ctx, path, &back), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), path));
    free(copy);
    free(data);
    tu_rmtree(dir);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Rebuilds a file from the given sections with valid checksums, to test checks beyond the CRCs. */
static unsigned char *build_file(uint32_t version, const char *const *payloads, const size_t *lens, int n,
                                 size_t *size)
{
    static const char tags[5][5] = {"ARCH", "CLAS", "PREP", "PARM", "BUFF"};
    size_t total = 20;
    for (int s = 0; s < n; s++) total += 16 + lens[s];
    unsigned char *f = malloc(total);
    assert_non_null(f);
    memcpy(f, "CNKMODEL", 8);
    put_u32(f + 8, version);
    put_u32(f + 12, 5);
    put_u32(f + 16, (uint32_t)crc32(0, f, 16));
    size_t pos = 20;
    for (int s = 0; s < n; s++) {
        memcpy(f + pos, tags[s], 4);
        put_u32(f + pos + 4, (uint32_t)lens[s]);
        put_u32(f + pos + 8, 0);
        memcpy(f + pos + 12, payloads[s], lens[s]);
        put_u32(f + pos + 12 + lens[s], (uint32_t)crc32(0, f + pos, (uInt)(12 + lens[s])));
        pos += 16 + lens[s];
    }
    *size = total;
    return f;
}

static void test_semantic_checks(void **state)
{
    (void)state;
    /* Params section: u64 count then floats. The tiny arch needs 41 params and 6 buffer values. */
    char params[8 + 41 * 4] = {41}, buffers[8 + 6 * 4] = {6}, short_params[8 + 40 * 4] = {40};
    memset(params + 8, 0, 41 * 4);
    memset(buffers + 8, 0, 6 * 4);
    memset(short_params + 8, 0, 40 * 4);
    const char *ok[5] = {tiny_cfg, "a\nb\n", "k=v\n", params, buffers};
    size_t ok_lens[5] = {strlen(tiny_cfg), 4, 4, sizeof params, sizeof buffers};
    size_t size;
    unsigned char *f = build_file(1, ok, ok_lens, 5, &size);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    assert_int_equal(cnk_modelfile_read_mem(&ctx, "m.cnk", f, size, &mf), CNK_OK); /* the builder is right */
    assert_int_equal(mf.n_classes, 2);
    cnk_modelfile_release(&mf);
    free(f);

    f = build_file(CNK_MODELFILE_VERSION, ok, ok_lens, 5, &size); /* the current version, as version 1 above */
    assert_int_equal(cnk_modelfile_read_mem(&ctx, "m.cnk", f, size, &mf), CNK_OK);
    cnk_modelfile_release(&mf);
    free(f);
    char newer[128];
    snprintf(newer, sizeof newer, "made by a newer cnnkit (model format version %d, this build reads up to %d)",
             CNK_MODELFILE_VERSION + 1, CNK_MODELFILE_VERSION);
    f = build_file(CNK_MODELFILE_VERSION + 1, ok, ok_lens, 5, &size);
    expect_refused(f, size, newer, "newer version");
    free(f);
    f = build_file(0, ok, ok_lens, 5, &size);
    expect_refused(f, size, "version 0", "version 0");
    free(f);

    const char *bad_count[5] = {tiny_cfg, "a\nb\n", "", short_params, buffers};
    size_t bad_count_lens[5] = {strlen(tiny_cfg), 4, 0, sizeof short_params, sizeof buffers};
    f = build_file(1, bad_count, bad_count_lens, 5, &size);
    expect_refused(f, size, "40 parameters and 6 buffer values, but the architecture needs 41 and 6", "counts");
    free(f);

    char lying[8 + 41 * 4];
    memcpy(lying, params, sizeof lying);
    lying[0] = 42; /* says 42 but holds 41 */
    const char *lie[5] = {tiny_cfg, "a\nb\n", "", lying, buffers};
    size_t lie_lens[5] = {strlen(tiny_cfg), 4, 0, sizeof lying, sizeof buffers};
    f = build_file(1, lie, lie_lens, 5, &size);
    expect_refused(f, size, "says 42 values", "lying count");
    free(f);

    const char *three[5] = {tiny_cfg, "a\nb\nc\n", "", params, buffers};
    size_t three_lens[5] = {strlen(tiny_cfg), 6, 0, sizeof params, sizeof buffers};
    f = build_file(1, three, three_lens, 5, &size);
    expect_refused(f, size, "3 class names, but the network's output 'logits' has 2", "class count");
    free(f);

    const char *bad_arch[5] = {"[input]\nshape = 1x2x2\n[dense]\nunits = 2\nbogus = 1\n", "a\nb\n", "", params,
                               buffers};
    size_t bad_arch_lens[5] = {strlen(bad_arch[0]), 4, 0, sizeof params, sizeof buffers};
    f = build_file(1, bad_arch, bad_arch_lens, 5, &size);
    expect_refused(f, size, "m.cnk:5: unknown key 'bogus' in [dense]", "bad arch");
    free(f);

    const char *empty_name[5] = {tiny_cfg, "a\n\n", "", params, buffers};
    size_t empty_name_lens[5] = {strlen(tiny_cfg), 3, 0, sizeof params, sizeof buffers};
    f = build_file(1, empty_name, empty_name_lens, 5, &size);
    expect_refused(f, size, "empty name", "empty class name");
    free(f);

    f = build_file(1, ok, ok_lens, 4, &size); /* the buffers section missing */
    expect_refused(f, size, "truncated (the buffers section is missing)", "missing section");
    free(f);

    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                        0, 0, 0, 1, 0, 0, 0, 1};
    expect_refused(png, sizeof png, "not a cnnkit model file", "foreign");
    expect_refused((const unsigned char *)"", 0, "not a cnnkit model file", "empty");
}

static void test_write_refuses_inconsistent_models(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "modelfile-write");
    snprintf(path, sizeof path, "%s/m.cnk", dir);
    cnk_modelfile mf;
    make_tiny(&mf);
    mf.n_params--;
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_ERR_INPUT);
    mf.n_params++;
    free(mf.class_names[1]);
    mf.class_names[1] = xstrdup("two\nlines");
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "line break"));
    mf.n_classes = 1;
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_ERR_INPUT);
    mf.n_classes = 2;
    free(mf.class_names[1]);
    mf.class_names[1] = xstrdup("two");
    assert_int_equal(tu_system("test ! -e '%s'", path), 0); /* nothing written by the failures */
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/m.cnk", dir);
    assert_int_equal(cnk_modelfile_write(&ctx, missing, &mf), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), missing));
    cnk_modelfile_release(&mf);
    tu_rmtree(dir);
}

/* A real-size model: MobileNetV2 (3.5 M parameters) saved and loaded bit-exactly. */
static void test_large_model(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", NULL, &arch), CNK_OK);
    cnk_modelfile mf, back;
    cnk_modelfile_init(&mf);
    assert_int_equal(cnk_cfg_write(&ctx, &arch, &mf.arch_text), CNK_OK);
    mf.n_classes = 1001;
    mf.class_names = calloc(1001, sizeof *mf.class_names);
    assert_non_null(mf.class_names);
    for (int i = 0; i < 1001; i++) {
        char name[32];
        snprintf(name, sizeof name, "class %d", i);
        mf.class_names[i] = xstrdup(name);
    }
    mf.n_params = arch.n_params;
    mf.n_buffers = arch.n_buffers;
    mf.params = malloc(mf.n_params * sizeof(float));
    mf.buffers = malloc(mf.n_buffers * sizeof(float));
    assert_non_null(mf.params);
    assert_non_null(mf.buffers);
    for (size_t i = 0; i < mf.n_params; i++) mf.params[i] = (float)(i % 1000) * 1e-3f;
    for (size_t i = 0; i < mf.n_buffers; i++) mf.buffers[i] = (float)i;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "modelfile-large");
    snprintf(path, sizeof path, "%s/mobilenet.cnk", dir);
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, path, &back), CNK_OK);
    assert_same_model(&mf, &back);
    cnk_modelfile_release(&back);
    cnk_modelfile_release(&mf);
    cnk_arch_release(&arch);
    tu_rmtree(dir);
}

/* `cnnkit summary MODEL.cnk`: the table of the stored architecture; damaged or missing files exit 3. */
static void test_cli_summary_of_model(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200], out[4200];
    tu_tmpdir(dir, sizeof dir, "modelfile-cli");
    snprintf(path, sizeof path, "%s/tiny.cnk", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    cnk_modelfile mf;
    make_tiny(&mf);
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_OK);
    cnk_modelfile_release(&mf);
    const char *bin = tu_cnnkit_bin();
    assert_int_equal(tu_system("'%s' summary '%s' > '%s'", bin, path, out), 0);
    assert_int_equal(tu_system("grep -q '^Model: .*tiny.cnk (2 classes: blues, ...)$' '%s'", out), 0);
    assert_int_equal(tu_system("grep -q '^Total params: 47$' '%s'", out), 0); /* 41 parameters + 6 BN buffers */
    assert_int_equal(tu_system("grep -q '^Non-trainable params: 6$' '%s'", out), 0);
    /* Corrupt one byte in the middle: exit 3 with one line naming the file. */
    assert_int_equal(tu_system("printf 'X' | dd of='%s' bs=1 seek=100 conv=notrunc status=none", path), 0);
    assert_int_equal(tu_system("'%s' summary '%s' 2> '%s'", bin, path, out), 3);
    assert_int_equal(tu_system("test $(wc -l < '%s') -eq 1 && grep -q 'tiny.cnk: corrupted' '%s'", out, out), 0);
    assert_int_equal(tu_system("'%s' summary '%s/missing.cnk' 2>/dev/null", bin, dir), 3);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_truncation_and_flip_is_refused),
        cmocka_unit_test(test_semantic_checks),
        cmocka_unit_test(test_write_refuses_inconsistent_models),
        cmocka_unit_test(test_large_model),
        cmocka_unit_test(test_cli_summary_of_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
