/* Tests for nn/cfg: parsing every key, defaults, write -> parse round trips of every built-in and of the
 * hand-written all-kinds fixture, and one-line "<file>:<line>: problem" errors for malformed text.
 * test-libs: core nn */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/arch.h"
#include "nn/builtin.h"
#include "nn/cfg.h"

static const char *const sample =
    "# a small two-block network\n"
    "[input]\n"
    "name = mel\n"
    "shape = 1x32x20   # C x H x W\n"
    "\n"
    "[conv2d]\n"
    "name = conv1\n"
    "filters = 8\n"
    "size = 3\n"
    "stride = 2x1\n"
    "padding = same\n"
    "bias = 0\n"
    "[batchnorm]\n"
    "name = bn1\n"
    "activation = leaky_relu\n"
    "alpha = 0.3\n"
    "\t[conv2d]   \n"
    "  name = conv2  \n"
    "filters = 8\n"
    "size = 3\n"
    "dilation = 2\n"
    "padding = 2\n"
    "[add]\n"
    "name = res\n"
    "from = bn1, conv2\n"
    "activation = elu\n"
    "[global_avgpool]\n"
    "[dense]\n"
    "units = 4\n"
    "trainable = 0\n";

static void test_parse_sample(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    int rc = cnk_cfg_parse(&ctx, sample, "sample.cfg", &arch);
    if (rc) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(arch.n_layers, 7);
    const cnk_layer *conv1 = &arch.layers[1];
    assert_int_equal(conv1->kind, CNK_LAYER_CONV2D);
    assert_int_equal(conv1->filters, 8);
    assert_int_equal(conv1->window.stride_h, 2);
    assert_int_equal(conv1->window.stride_w, 1);
    assert_int_equal(conv1->window.padding, CNK_PAD_SAME);
    assert_int_equal(conv1->bias, 0);
    assert_int_equal(conv1->out.h, 16);
    assert_int_equal(conv1->out.w, 20);
    const cnk_layer *bn = &arch.layers[2];
    assert_int_equal(bn->activation.kind, CNK_ACT_LEAKY_RELU);
    assert_true(bn->activation.alpha == 0.3f);
    assert_true(bn->eps == 1e-5f && bn->momentum == 0.1f);
    const cnk_layer *conv2 = &arch.layers[3];
    assert_int_equal(conv2->window.dilation_h, 2);
    assert_int_equal(conv2->window.pad_left, 2);
    assert_int_equal(conv2->out.h, 16); /* dilated 3x3 (effective 5) with padding 2 keeps the size */
    const cnk_layer *res = &arch.layers[4];
    assert_int_equal(res->n_inputs, 2);
    assert_int_equal(res->inputs[0], 2);
    assert_int_equal(res->inputs[1], 3);
    assert_true(res->activation.kind == CNK_ACT_ELU && res->activation.alpha == 1.0f); /* elu default alpha */
    assert_string_equal(arch.layers[5].name, "global_avgpool5");                    /* default names */
    assert_string_equal(arch.layers[6].name, "dense6");
    assert_int_equal(arch.layers[6].trainable, 0);
    assert_int_equal(arch.n_outputs, 1);
    assert_int_equal(arch.outputs[0], 6);
    assert_int_equal(arch.n_params, 72 + 16 + 8 * 8 * 9 + 8 + 8 * 4 + 4);
    assert_int_equal(arch.n_trainable_params, arch.n_params - 36);
    cnk_arch_release(&arch);
}

/* Field-by-field equality of what the cfg format expresses. */
static void assert_same_arch(const cnk_arch *a, const cnk_arch *b)
{
    assert_int_equal(a->n_layers, b->n_layers);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int k = 0; k < a->n_outputs; k++) assert_int_equal(a->outputs[k], b->outputs[k]);
    for (int i = 0; i < a->n_layers; i++) {
        const cnk_layer *x = &a->layers[i], *y = &b->layers[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->n_inputs, y->n_inputs);
        for (int k = 0; k < x->n_inputs; k++) assert_int_equal(x->inputs[k], y->inputs[k]);
        assert_int_equal(x->trainable, y->trainable);
        assert_memory_equal(&x->input_shape, &y->input_shape, sizeof x->input_shape);
        assert_int_equal(x->filters, y->filters);
        assert_int_equal(x->units, y->units);
        assert_memory_equal(&x->window, &y->window, sizeof x->window);
        assert_int_equal(x->activation.kind, y->activation.kind);
        if (x->activation.kind == CNK_ACT_LEAKY_RELU || x->activation.kind == CNK_ACT_ELU)
            assert_true(x->activation.alpha == y->activation.alpha);
        if (x->kind != CNK_LAYER_INPUT && x->kind != CNK_LAYER_MAXPOOL && x->kind != CNK_LAYER_AVGPOOL)
            assert_int_equal(x->kind == CNK_LAYER_CONV2D || x->kind == CNK_LAYER_DEPTHWISE_CONV2D ||
                                     x->kind == CNK_LAYER_DENSE ? x->bias : 0,
                             y->kind == CNK_LAYER_CONV2D || y->kind == CNK_LAYER_DEPTHWISE_CONV2D ||
                                     y->kind == CNK_LAYER_DENSE ? y->bias : 0);
        if (x->kind == CNK_LAYER_BATCHNORM) assert_true(x->eps == y->eps && x->momentum == y->momentum);
        if (x->kind == CNK_LAYER_DROPOUT) assert_true(x->rate == y->rate);
        assert_memory_equal(&x->out, &y->out, sizeof x->out);
        assert_int_equal(x->n_params, y->n_params);
        assert_int_equal(x->param_offset, y->param_offset);
    }
}

static void round_trip(const cnk_arch *arch, const char *what)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char *text1, *text2;
    cnk_arch again;
    assert_int_equal(cnk_cfg_write(&ctx, arch, &text1), CNK_OK);
    int rc = cnk_cfg_parse(&ctx, text1, what, &again);
    if (rc) fail_msg("%s: %s", what, cnk_error(&ctx));
    assert_same_arch(arch, &again);
    assert_int_equal(cnk_cfg_write(&ctx, &again, &text2), CNK_OK);
    assert_string_equal(text1, text2);
    free(text1);
    free(text2);
    cnk_arch_release(&again);
}

static void test_round_trips(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_cfg_parse(&ctx, sample, "sample.cfg", &arch), CNK_OK);
    round_trip(&arch, "sample");
    cnk_arch_release(&arch);
    char path[4096];
    assert_int_equal(cnk_cfg_read_file(&ctx, tu_fixture(path, sizeof path, "arch/all_kinds.cfg"), &arch), CNK_OK);
    round_trip(&arch, "all_kinds");
    cnk_arch_release(&arch);
    const char *const *names = cnk_builtin_names();
    for (int i = 0; names[i]; i++)
        for (int folded = 0; folded < 2; folded++) {
            cnk_builtin_opts o;
            cnk_builtin_opts_init(&o);
            o.folded_bn = folded;
            o.width = folded ? 0.5f : 0;
            assert_int_equal(cnk_builtin_arch(&ctx, names[i], &o, &arch), CNK_OK);
            round_trip(&arch, names[i]);
            cnk_arch_release(&arch);
        }
}

/* A built-in edited in memory (frozen layers, odd floats, asymmetric padding) survives the round trip. */
static void test_round_trip_of_edited_arch(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "cnn", NULL, &arch), CNK_OK);
    cnk_arch_freeze_first(&arch, 5);
    arch.layers[2].eps = 1.2345678e-4f;
    arch.layers[2].momentum = 0.3333333f;
    arch.layers[3].window.padding = CNK_PAD_EXPLICIT;
    arch.layers[3].window.pad_top = 0;
    arch.layers[3].window.pad_bottom = 1;
    arch.layers[3].window.pad_left = 1;
    arch.layers[3].window.pad_right = 0;
    arch.layers[1].activation = (cnk_activation){CNK_ACT_LEAKY_RELU, 0.1f};
    assert_int_equal(cnk_arch_infer(&ctx, &arch), CNK_OK);
    round_trip(&arch, "edited cnn");
    cnk_arch_release(&arch);
}

typedef struct bad_cfg {
    const char *text;
    const char *message; /* expected after "bad.cfg:" */
} bad_cfg;

static const bad_cfg bad_cfgs[] = {
    {"[input]\nshape = 1x4x4\n[conv3d]\n", "3: unknown layer kind [conv3d]"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 2\nkernel = 3\n", "5: unknown key 'kernel' in [conv2d]"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 2\nfilters = 3\n", "5: unknown key 'filters' in [dense]"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = two\n", "4: bad value 'two' for units"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 0\n", "4: bad value '0' for units"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 3\nunits = 4\n", "5: 'units' given twice"},
    {"[input]\nshape = 1x4\n", "2: bad value '1x4' for shape"},
    {"[input]\nname = a\n", "1: [input] needs shape = CxHxW"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nsize = 3\n", "3: [conv2d] needs filters"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 1\npadding = half\n", "5: bad value 'half' for padding"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 1\npadding = 1,2\n", "5: bad value '1,2' for padding"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 1\nstride = 2x\n", "5: bad value '2x' for stride"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 1\nsize = 5\n", "3: layer 'conv2d1': a 5x5 window does not fit"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 2\nactivation = swish\n", "5: unknown activation 'swish'"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 2\nactivation = relu\nalpha = 0.1\n",
     "6: alpha needs activation = leaky_relu or elu"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 2\nbias = yes\n", "5: bad value 'yes' for bias"},
    {"[input]\nshape = 1x4x4\n[batchnorm]\neps = 0\n", "4: bad value '0' for eps"},
    {"[input]\nshape = 1x4x4\n[dropout]\nrate = 1\n", "4: bad value '1' for rate"},
    {"[input]\nshape = 1x4x4\n[dropout]\nrate = nan\n", "4: bad value 'nan' for rate"},
    {"[input]\nname = x\nshape = 1x4x4\n[dense]\nname = x\nunits = 1\n", "4: layer 'x': duplicate layer name"},
    {"[input]\nshape = 1x4x4\n[dense]\nname = a b\nunits = 1\n", "3: layer 1: invalid name"},
    {"[input]\nshape = 1x4x4\n[add]\nfrom = input0, nowhere\n", "4: input 'nowhere' is not an earlier layer"},
    {"[input]\nshape = 1x4x4\n[add]\nfrom = input0\n", "3: layer 'add1': add needs at least 2 inputs"},
    {"[input]\nshape = 1x4x4\n[dense]\nname = d\nfrom = d\nunits = 1\n", "5: input 'd' is not an earlier layer"},
    {"shape = 1x4x4\n", "1: 'shape' outside a block"},
    {"[input]\nshape 1x4x4\n", "2: expected 'key = value' or a [block] header"},
    {"[input]\nshape =\n", "2: empty value for 'shape'"},
    {"[input\nshape = 1x4x4\n", "1: bad block header '[input'"},
    {"# nothing\n\n", "2: no layers"},
    {"[dense]\nunits = 3\n", "1: layer 'dense0': the first layer must be an input"},
    {"[network]\noutputs = nowhere\n[input]\nshape = 1x4x4\n", "2: output 'nowhere' is not an earlier layer"},
    {"[network]\nsize = 3\n", "2: unknown key 'size' in [network]"},
    {"[network]\n[network]\n", "2: [network] given twice"},
    {"[input]\nshape = 1x4x4\n[input]\nname = b\nshape = 1x5x4\n[concat]\nfrom = input0, b\n",
     "6: layer 'concat2': concat inputs differ in height/width"},
    {"[input]\nshape = 1x4x4\n[maxpool]\nsize = 2\npadding = 2\n",
     "3: layer 'maxpool1': pooling padding must be smaller than the window"},
    {"[input]\nshape = 1x4x4\n[maxpool]\nsize = 2\ndilation = 2\n", "5: unknown key 'dilation' in [maxpool]"},
    {"[input]\nshape = 1x20000x20000\n[conv2d]\nfilters = 100\n", "3: layer 'conv2d1': output shape"},
    {"[input]\nshape = 1x100000x100000\n", "1: layer 'input0': input shape 1x100000x100000 is too large or not"},
    {"[input]\nshape = 1x4x4\n[dense]\nunits = 99999999999999999999\n", "4: bad value"},
    {"[input]\nshape = 1x4x4\n[conv2d]\nfilters = 1\nsize = -3\n", "5: bad value '-3' for size"},
    {"[input]\nshape = 1x4x4\n[input]\nshape = 1x4x4\nfrom = input0\n", "5: unknown key 'from' in [input]"},
};

static void test_errors_name_file_and_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cfgs / sizeof bad_cfgs[0]; i++) {
        cnk_ctx ctx;
        tu_ctx(&ctx);
        cnk_arch arch;
        int rc = cnk_cfg_parse(&ctx, bad_cfgs[i].text, "bad.cfg", &arch);
        if (rc == CNK_OK) fail_msg("case %zu parsed but should fail with '%s'", i, bad_cfgs[i].message);
        char expected[512];
        snprintf(expected, sizeof expected, "bad.cfg:%s", bad_cfgs[i].message);
        if (strncmp(cnk_error(&ctx), expected, strlen(expected)) != 0)
            fail_msg("case %zu: got '%s', want '%s...'", i, cnk_error(&ctx), expected);
        assert_null(strchr(cnk_error(&ctx), '\n'));
        assert_int_equal(arch.n_layers, 0); /* left empty */
        assert_null(arch.layers);
    }
}

static void test_long_lines_and_files(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    char *text = malloc(10000);
    assert_non_null(text);
    memset(text, ' ', 9999);
    text[9999] = '\0';
    assert_int_not_equal(cnk_cfg_parse(&ctx, text, "long.cfg", &arch), CNK_OK);
    assert_non_null(strstr(cnk_error(&ctx), "long.cfg:1: line longer than"));
    free(text);
    /* Files: missing, binary, and the fixture. */
    assert_int_equal(cnk_cfg_read_file(&ctx, "/nonexistent/x.cfg", &arch), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "/nonexistent/x.cfg"));
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "cfg");
    snprintf(path, sizeof path, "%s/bin.cfg", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite("[input]\0\1\2", 1, 10, fp);
    fclose(fp);
    assert_int_equal(cnk_cfg_read_file(&ctx, path, &arch), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "NUL byte"));
    /* cnk_cfg_write_file then read gives the same network. */
    cnk_arch a, b;
    assert_int_equal(cnk_builtin_arch(&ctx, "fusion", NULL, &a), CNK_OK);
    snprintf(path, sizeof path, "%s/fusion.cfg", dir);
    assert_int_equal(cnk_cfg_write_file(&ctx, &a, path), CNK_OK);
    assert_int_equal(cnk_cfg_read_file(&ctx, path, &b), CNK_OK);
    assert_same_arch(&a, &b);
    cnk_arch_release(&a);
    cnk_arch_release(&b);
    tu_rmtree(dir);
}

/* Any text is either parsed or refused with a message: random mutations of a valid cfg never crash. */
static void test_mutated_text_never_crashes(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    FILE *fp = fopen(tu_fixture(path, sizeof path, "arch/all_kinds.cfg"), "rb");
    assert_non_null(fp);
    char base[4096];
    size_t n = fread(base, 1, sizeof base - 1, fp);
    fclose(fp);
    base[n] = '\0';
    static const char alphabet[] = "[]=,#x0123456789-. \nabcz_";
    uint64_t seed = 12345;
    int trials = tu_sanitized() ? 300 : 3000, parsed = 0;
    for (int t = 0; t < trials; t++) {
        char text[4096];
        memcpy(text, base, n + 1);
        for (int m = 0; m <= t % 3; m++) { /* 1 to 3 mutations */
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (size_t)(seed >> 33) % n;
            text[pos] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
        cnk_arch arch;
        int rc = cnk_cfg_parse(&ctx, text, "mutant.cfg", &arch);
        if (rc == CNK_OK) {
            parsed++;
            cnk_arch_release(&arch);
        } else {
            assert_true(strncmp(cnk_error(&ctx), "mutant.cfg:", 11) == 0);
        }
    }
    assert_true(parsed > 0 && parsed < trials);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sample),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_round_trip_of_edited_arch),
        cmocka_unit_test(test_errors_name_file_and_line),
        cmocka_unit_test(test_long_lines_and_files),
        cmocka_unit_test(test_mutated_text_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
