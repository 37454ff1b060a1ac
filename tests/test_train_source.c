/* Tests for photos' training source size (`--train-size`, pipeline/train.c and train_loop.c): at the input size
 * a run is exactly the run the code made before the option (its model, checkpoint and optimiser files hashed in
 * tests/fixtures/train_source by tests/ref/gen_train_source.sh with a build of a5db288); at a larger size the
 * training part is cached under its own key, the model file keeps the input size, the checkpoint records the
 * source size and --resume continues exactly; a real photo kept at 4/3 of the size and shrunk to it is nearly the
 * photo read at that size; sizes it cannot use are refused; photo folders default to 4/3 of the input size;
 * random erasing (--erase) resumes exactly too.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/image.h"
#include "nn/modelfile.h"
#include "pipeline/augment.h"
#include "pipeline/train.h"

static char tmp[4096], photos[4200];

/* Four cats and four dogs, linked from the shared animals3 folder (as the fixture's script does). */
static int setup(void **state)
{
    (void)state;
    return tu_link_photos("train_source", 4, tmp, sizeof tmp, photos, sizeof photos);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

/* FNV-1a (64 bits) of a file's bytes; 0 if it cannot be read. */
static unsigned long long file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned long long h = 14695981039346656037ULL;
    int c;
    while ((c = fgetc(f)) != EOF) h = (h ^ (unsigned)c) * 1099511628211ULL;
    fclose(f);
    return h;
}

static void model_path(const char *name, char *out, size_t cap) { snprintf(out, cap, "%s/%s.cnk", tmp, name); }

/* The options of a run on the photos at 32 x 32 with the training source train_w x train_h (-1: the default),
 * for epochs (stopping after stop_after of them when > 0, or resuming `resume`); model must outlive the run. */
static void photo_options(cnk_train_options *o, char *model, size_t cap, const char *name, int train_w,
                          int train_h, int epochs, int stop_after, const char *cache, const char *resume)
{
    model_path(name, model, cap);
    cnk_train_options_init(o);
    o->data = photos;
    o->arch = "cnn5"; /* the fixture's network (the photo default until session 7's cnn5d) */
    o->model_path = model;
    o->image_width = o->image_height = 32;
    o->val_fraction = 0.25; /* one cat and one dog: validation selects the kept epoch */
    o->epochs = epochs;
    o->train_width = train_w, o->train_height = train_h;
    o->max_epochs_this_run = stop_after;
    o->cache_dir = cache;
    o->resume = resume;
}

/* Such a run with the context's seed and one thread. */
static int run(const char *name, int train_w, int train_h, int epochs, int stop_after, const char *cache,
               const char *resume, cnk_train_result *res, cnk_ctx *ctx)
{
    static char model[4400];
    cnk_train_options o;
    photo_options(&o, model, sizeof model, name, train_w, train_h, epochs, stop_after, cache, resume);
    tu_ctx(ctx);
    return cnk_train_run(ctx, &o, res);
}

static void run_ok(const char *name, int train_w, int train_h, int epochs, int stop_after, const char *cache,
                   const char *resume, cnk_train_result *res)
{
    cnk_ctx ctx;
    if (run(name, train_w, train_h, epochs, stop_after, cache, resume, res, &ctx)) fail_msg("%s", cnk_error(&ctx));
}

/* The text part (preprocessing and checkpoint keys) of a model or checkpoint file. */
static char *file_text(const char *path)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    cnk_modelfile_init(&mf);
    if (cnk_modelfile_read(&ctx, path, &mf)) fail_msg("%s", cnk_error(&ctx));
    char *text = strdup(mf.preprocess);
    cnk_modelfile_release(&mf);
    assert_non_null(text);
    return text;
}

/* The fixture's value of key (lines "key value"): the files' hashes ("model", "ckpt", "optim") and the history
 * ("ckpt_h0".."ckpt_h3") of the run before the option. */
static void fixture_value(const char *key, char *out, size_t cap)
{
    char path[4096], line[1024], name[64], value[960];
    tu_fixture(path, sizeof path, "train_source/before.txt");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    out[0] = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %959s", name, value) == 2 && strcmp(name, key) == 0) snprintf(out, cap, "%s", value);
    fclose(f);
    if (!out[0]) fail_msg("no %s in %s", key, path);
}

static void assert_hash(const char *name, const char *path, const char *key)
{
    char want[64], got[64];
    fixture_value(key, want, sizeof want);
    snprintf(got, sizeof got, "%016llx", file_hash(path));
    if (strcmp(got, want) != 0)
        fail_msg("%s: %s is not the file of the run before (hash %s, expected %s)", name, path, got, want);
}

/* Where the history is the fixture's to the last digit (a Release build on a CPU whose OpenBLAS kernels round as
 * the fixture machine's did: AMD Zen 4), the model, checkpoint and optimiser files must be byte for byte those of
 * the run before too. Elsewhere the sums round differently (the sanitizer build's -O0: 6e-5 at most measured; another
 * CPU's kernels: 5e-5 on an Intel Emerald Rapids), so the history must agree to 1e-3 and the files are not compared:
 * a run down another path, e.g. other random draws, differs by far more. */
static void assert_run_before(const char *name)
{
    char model[4400], ckpt[4500], optim[4600];
    model_path(name, model, sizeof model);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    snprintf(optim, sizeof optim, "%s.ckpt.optim-2.npy", model);
    char *text = file_text(ckpt);
    int exact = 1;
    for (int s = 0; s < 4; s++) {
        char key[32], want[960], got[960];
        snprintf(key, sizeof key, "ckpt_h%d", s);
        fixture_value(key, want, sizeof want);
        cnk_ctx ctx;
        tu_ctx(&ctx);
        if (cnk_kv_get(&ctx, text, key, got, sizeof got)) fail_msg("%s: no %s in the checkpoint", name, key);
        if (strcmp(got, want) == 0) continue;
        exact = 0;
        const char *a = got, *b = want;
        for (int e = 0; e < 2; e++) {
            char *end_a, *end_b;
            double va = strtod(a, &end_a), vb = strtod(b, &end_b);
            if (fabs(va - vb) > 1e-3 * fabs(vb) + 1e-6)
                fail_msg("%s: %s=%s, the run before had %s", name, key, got, want);
            a = end_a + (*end_a == ','), b = end_b + (*end_b == ',');
        }
    }
    free(text);
    if (!exact) return;
    assert_hash(name, model, "model");
    assert_hash(name, ckpt, "ckpt");
    assert_hash(name, optim, "optim");
}

/* --train-size 0 and the input size itself are the old path: the same history, weights, optimiser state and
 * weight average, byte for byte, as the code before the option gave. */
static void test_input_size_is_the_run_before(void **state)
{
    (void)state;
    cnk_train_result res;
    run_ok("zero", 0, 0, 2, 0, "", NULL, &res);
    assert_int_equal(res.epochs_run, 2);
    assert_run_before("zero");
    run_ok("same", 32, 32, 2, 0, "", NULL, &res);
    assert_run_before("same");
    char model[4400], ckpt[4500];
    model_path("same", model, sizeof model);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", model);
    char *text = file_text(ckpt);
    assert_null(strstr(text, "ckpt_train_size")); /* no source: nothing new in the checkpoint */
    free(text);
}

/* Photo folders default to a source a third larger than the input (43 x 43 for 32 x 32): the run is the one an
 * explicit --train-size 43 makes, and the checkpoint names the size. */
static void test_default_source_is_four_thirds(void **state)
{
    (void)state;
    cnk_train_result res;
    run_ok("default_source", -1, -1, 1, 0, "", NULL, &res);
    run_ok("explicit_43", 43, 43, 1, 0, "", NULL, &res);
    char by_default[4400], explicit[4400], ckpt[4500];
    model_path("default_source", by_default, sizeof by_default);
    model_path("explicit_43", explicit, sizeof explicit);
    assert_true(tu_files_equal(by_default, explicit));
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", by_default);
    char *text = file_text(ckpt);
    assert_non_null(strstr(text, "\nckpt_train_size=43x43\n"));
    free(text);
}

/* A source of 48 x 48: the training photos are cached at 48 and the others at 32 under separate keys (a second
 * run reads every file from the cache and repeats the run; a run at the input size finds only the validation
 * and test photos there), the model file is the 32 x 32 model as before, and the checkpoint names the source. */
static void test_larger_source_cache_and_files(void **state)
{
    (void)state;
    char cache[4200], big[4400], again[4400], ckpt[4500];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    cnk_train_result res;
    run_ok("big", 48, 48, 1, 0, cache, NULL, &res);
    size_t n_items = res.n_train + res.n_val + res.n_test, n_other = res.n_val + res.n_test;
    assert_int_equal(n_items, 8);
    assert_true(res.n_train > 0 && n_other > 0);
    assert_int_equal(res.n_cached, 0);
    run_ok("big_again", 48, 48, 1, 0, cache, NULL, &res);
    assert_int_equal(res.n_cached, n_items);
    model_path("big", big, sizeof big);
    model_path("big_again", again, sizeof again);
    assert_true(tu_files_equal(big, again)); /* cached features are the computed ones */
    run_ok("small", 0, 0, 1, 0, cache, NULL, &res);
    assert_int_equal(res.n_cached, n_other); /* the training photos at 32 were never cached */
    char small[4400];
    model_path("small", small, sizeof small);
    assert_false(tu_files_equal(big, small)); /* sharper crops: another run */
    run_ok("big_third", 48, 48, 1, 0, cache, NULL, &res);
    assert_int_equal(res.n_cached, n_items); /* the 32 entries did not replace the 48 ones */

    char *text = file_text(big);
    assert_non_null(strstr(text, "\nheight=32\n"));
    assert_non_null(strstr(text, "\nwidth=32\n"));
    assert_null(strstr(text, "train_size"));
    free(text);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", big);
    text = file_text(ckpt);
    assert_non_null(strstr(text, "\nckpt_train_size=48x48\n"));
    free(text);
}

/* An interrupted run with a source resumes to the uninterrupted one's files; the resumed run takes the source
 * size from the checkpoint (none given here). */
static void test_resume_with_source(void **state)
{
    (void)state;
    cnk_train_result res;
    run_ok("whole", 48, 48, 3, 0, "", NULL, &res);
    run_ok("parts", 48, 48, 3, 1, "", NULL, &res);
    assert_true(res.interrupted);
    char whole[4400], parts[4400], ckpt_whole[4500], ckpt_parts[4500];
    model_path("whole", whole, sizeof whole);
    model_path("parts", parts, sizeof parts);
    snprintf(ckpt_whole, sizeof ckpt_whole, "%s.ckpt", whole);
    snprintf(ckpt_parts, sizeof ckpt_parts, "%s.ckpt", parts);
    run_ok("parts", -1, -1, 3, 0, "", ckpt_parts, &res);
    assert_false(res.interrupted);
    assert_int_equal(res.epochs_run, 3);
    assert_true(tu_files_equal(whole, parts));
    assert_true(tu_files_equal(ckpt_whole, ckpt_parts));
}

/* Random erasing (--erase) on a run with a source: the checkpoint records it, an interrupted run resumed with
 * no option ends with the uninterrupted one's files, and it changes the training. */
static void test_erase_resumes_exactly(void **state)
{
    (void)state;
    static char model[4400];
    const char *names[2] = {"erase_whole", "erase_parts"};
    cnk_train_result res;
    for (int i = 0; i < 2; i++) {
        cnk_train_options o;
        photo_options(&o, model, sizeof model, names[i], 48, 48, 3, i == 1 ? 1 : 0, "", NULL);
        o.erase = 0.5;
        cnk_ctx ctx;
        tu_ctx(&ctx);
        if (cnk_train_run(&ctx, &o, &res)) fail_msg("%s", cnk_error(&ctx));
    }
    assert_true(res.interrupted);
    char whole[4400], parts[4400], ckpt_whole[4500], ckpt_parts[4500], plain[4400];
    model_path("erase_whole", whole, sizeof whole);
    model_path("erase_parts", parts, sizeof parts);
    snprintf(ckpt_whole, sizeof ckpt_whole, "%s.ckpt", whole);
    snprintf(ckpt_parts, sizeof ckpt_parts, "%s.ckpt", parts);
    char *text = file_text(ckpt_parts);
    assert_non_null(strstr(text, "\nckpt_erase=0.5\n"));
    free(text);
    run_ok("erase_parts", -1, -1, 3, 0, "", ckpt_parts, &res);
    assert_false(res.interrupted);
    assert_true(tu_files_equal(whole, parts));
    assert_true(tu_files_equal(ckpt_whole, ckpt_parts));
    run_ok("erase_none", 48, 48, 3, 0, "", NULL, &res);
    model_path("erase_none", plain, sizeof plain);
    assert_false(tu_files_equal(whole, plain));
    text = file_text(plain);
    assert_null(strstr(text, "\nckpt_erase=0.5\n"));
    free(text);
}

/* A real photo: kept at 128 x 128 and resized to 96 x 96 as a training crop of scale 1 is (a tent over 4/3
 * pixels), it is the photo read at 96 x 96 (the file's own resize) but for the two resizes' difference. */
static void test_source_photo_matches_the_input_photo(void **state)
{
    (void)state;
    enum { C = 3, S = 128, N = 96 };
    char list[4400], first[4096] = {0}, path[8600];
    snprintf(list, sizeof list, "%s/first.txt", tmp);
    assert_int_equal(tu_system("ls '%s/cats' | sort | head -1 > '%s'", photos, list), 0); /* the first cat */
    FILE *f = fopen(list, "r");
    assert_non_null(f);
    assert_non_null(fgets(first, sizeof first, f));
    fclose(f);
    first[strcspn(first, "\n")] = 0;
    snprintf(path, sizeof path, "%s/cats/%s", photos, first);
    float *big = malloc(sizeof(float) * C * S * S), *small = malloc(sizeof(float) * C * N * N);
    float *resized = malloc(sizeof(float) * C * N * N), *x = malloc(sizeof(float) * C * N * N);
    assert_true(big && small && resized && x);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_image_load_tensor(&ctx, path, C, S, S, CNK_CROP_CENTER, CNK_NORM_UNIT, big), CNK_OK);
    assert_int_equal(cnk_image_load_tensor(&ctx, path, C, N, N, CNK_CROP_CENTER, CNK_NORM_UNIT, small), CNK_OK);
    cnk_augment_crop_resize(big, C, S, S, 0, 0, S, S, 0, resized, N, N);
    double sum = 0, worst = 0;
    for (int i = 0; i < C * N * N; i++) {
        double d = fabs((double)resized[i] - small[i]);
        sum += d;
        worst = fmax(worst, d);
    }
    double mean = sum / (C * N * N);
    /* pixel values in [0, 1]: the two paths differ by about one 8-bit step (0.0039) on average (0.0042 for this
     * cat), 0.05 at most (edges) */
    if (!(mean < 0.006 && worst < 0.08)) fail_msg("mean |diff| %g, max %g", mean, worst);
    /* the training path without augmentation: the same image */
    cnk_augment_params none = {0};
    cnk_rng rng;
    cnk_rng_seed(&rng, 1, 0);
    cnk_augment_image_from(&rng, &none, big, S, S, x, C, N, N);
    assert_memory_equal(x, resized, sizeof(float) * C * N * N);
    free(big), free(small), free(resized), free(x);
}

static void expect_refusal(int train_w, int train_h, const char *want)
{
    cnk_ctx ctx;
    cnk_train_result res;
    int rc = run("refused", train_w, train_h, 1, 0, "", NULL, &res, &ctx);
    assert_int_equal(rc, CNK_ERR_ARG);
    if (!strstr(cnk_error(&ctx), want)) fail_msg("'%s' does not say '%s'", cnk_error(&ctx), want);
}

/* The option's values, and sizes the run refuses before reading any photo: smaller than the input, more than 4
 * times it, another aspect ratio; on data other than photo folders. */
static void test_option_values_and_refusals(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    assert_true(o.train_width < 0 && o.train_height < 0); /* the default */
    assert_int_equal(cnk_train_option_set(&o, "train-size", "128"), 0);
    assert_int_equal(o.train_width, 128);
    assert_int_equal(o.train_height, 128);
    assert_int_equal(cnk_train_option_set(&o, "train-size", "150x112"), 0);
    assert_int_equal(o.train_width, 150);
    assert_int_equal(o.train_height, 112);
    const char *bad[] = {"", "x", "-3", "12a", "0x5", "128x", "5000", NULL};
    for (int i = 0; bad[i]; i++) assert_int_equal(cnk_train_option_set(&o, "train-size", bad[i]), -1);
    assert_int_equal(o.train_width, 150); /* unchanged */
    assert_int_equal(cnk_train_option_set(&o, "train-size", "0"), 0);
    assert_int_equal(o.train_width, 0);
    assert_int_equal(o.train_height, 0);

    expect_refusal(24, 24, "--train-size 24x24: expected the input size 32x32 to 4 times it");
    expect_refusal(160, 160, "--train-size 160x160");
    expect_refusal(48, 40, "--train-size 48x40");

    char audio_tmp[4096], audio[4200], model[4400];
    assert_int_equal(tu_write_audio_set("train_source_audio", audio_tmp, sizeof audio_tmp, audio, sizeof audio), 0);
    snprintf(model, sizeof model, "%s/m.cnk", audio_tmp);
    cnk_train_options_init(&o);
    o.data = audio;
    o.model_path = model;
    o.cache_dir = "";
    o.train_width = o.train_height = 64;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_train_result res;
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "image folders only"));
    o.train_width = o.train_height = -1;
    o.erase = 0.5; /* spectrograms have their own masks */
    assert_int_equal(cnk_train_run(&ctx, &o, &res), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--erase: random erasing applies to image folders only"));
    tu_rmtree(audio_tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_size_is_the_run_before),
        cmocka_unit_test(test_larger_source_cache_and_files),
        cmocka_unit_test(test_resume_with_source),
        cmocka_unit_test(test_erase_resumes_exactly),
        cmocka_unit_test(test_source_photo_matches_the_input_photo),
        cmocka_unit_test(test_option_values_and_refusals),
        cmocka_unit_test(test_default_source_is_four_thirds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
