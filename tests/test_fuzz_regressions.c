/* test_fuzz_regressions.c: replays every committed fuzz input (fuzz/crashers/<target>/ regressions, fuzz/corpus/<target>/
 * seeds) and the bad-input corpus (tests/fixtures/bad_inputs/) through the harnesses' own entry points
 * (fuzz/targets.h), so a fixed crash stays fixed in the normal and sanitizer builds without clang.
 * test-libs: core features nn pipeline */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "fuzz/targets.h"
#include "testutil.h"

/* The bad-input corpus folders and the harness that reads their files. */
static const struct {
    const char *folder;
    const char *target;
} corpus_kinds[] = {{"audio", "audio"}, {"image", "image"}, {"csv", "csv"},
                    {"cfg", "cfg"},     {"model", "modelfile"}, {"tflite", "tflite"}};

static const char *source_dir(void)
{
    const char *dir = getenv("CNK_SOURCE_DIR");
    return dir && *dir ? dir : "..";
}

/* Runs every file of dir through target, counting them in *n_files; returns how many broke the contract (or,
 * named good*, failed to load). Problems are printed and counted, not asserted, so every file gets its turn. */
static int replay_folder(const cnk_fuzz_target *target, const char *dir, size_t *n_files)
{
    *n_files = 0;
    if (!cnk_is_dir(dir)) return 0;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_pathlist files = {0};
    if (cnk_list_files(&ctx, dir, 0, &files) != CNK_OK) {
        print_error("%s\n", cnk_error(&ctx));
        return 1;
    }
    int problems = 0;
    for (size_t i = 0; i < files.count; i++) {
        unsigned char *data = NULL;
        size_t size = 0;
        if (cnk_read_file(&ctx, files.paths[i], 0, &data, &size) != CNK_OK) {
            print_error("%s\n", cnk_error(&ctx));
            problems++;
            continue;
        }
        int rc = target->run(data, size);
        free(data);
        if (rc < 0) {
            print_error("%s: broke the %s loader's contract (see above)\n", files.paths[i], target->name);
            problems++;
        } else if (strncmp(cnk_path_base(files.paths[i]), "good", 4) == 0 && rc != CNK_OK) {
            print_error("%s: a valid file failed to load through the %s harness (status %d)\n", files.paths[i],
                        target->name, rc);
            problems++;
        }
    }
    *n_files = files.count;
    cnk_pathlist_release(&files);
    return problems;
}

static void test_crashers_and_seeds_replay_cleanly(void **state)
{
    (void)state;
    size_t total = 0;
    int problems = 0;
    for (int t = 0; t < cnk_fuzz_n_targets; t++) {
        char dir[4096];
        size_t seeds, crashers;
        snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", source_dir(), cnk_fuzz_targets[t].name);
        problems += replay_folder(&cnk_fuzz_targets[t], dir, &seeds);
        snprintf(dir, sizeof dir, "%s/fuzz/crashers/%s", source_dir(), cnk_fuzz_targets[t].name);
        problems += replay_folder(&cnk_fuzz_targets[t], dir, &crashers);
        if (seeds == 0) {
            print_error("fuzz/corpus/%s has no seeds (run tests/ref/gen_bad_inputs.py)\n", cnk_fuzz_targets[t].name);
            problems++;
        }
        total += seeds + crashers;
    }
    assert_int_equal(problems, 0);
    assert_true(total >= 40);
}

static void test_bad_input_corpus_replays_cleanly(void **state)
{
    (void)state;
    int problems = 0;
    for (size_t k = 0; k < sizeof corpus_kinds / sizeof corpus_kinds[0]; k++) {
        const cnk_fuzz_target *target = cnk_fuzz_find(corpus_kinds[k].target);
        assert_non_null(target);
        char rel[256], dir[4096];
        size_t n;
        snprintf(rel, sizeof rel, "bad_inputs/%s", corpus_kinds[k].folder);
        problems += replay_folder(target, tu_fixture(dir, sizeof dir, rel), &n);
        if (n < 5) {
            print_error("%s: fewer than 5 files (run tests/ref/gen_bad_inputs.py)\n", dir);
            problems++;
        }
    }
    assert_int_equal(problems, 0);
}

/* The harness must flag a broken contract, or the replays above prove nothing: an empty cfg fails with a
 * message naming the input; a valid one round-trips. */
static void test_harness_checks_are_live(void **state)
{
    (void)state;
    const cnk_fuzz_target *cfg = cnk_fuzz_find("cfg");
    assert_non_null(cfg);
    const char *good = "[input]\nshape = 1x4x4\n[flatten]\n[dense]\nunits = 3\n";
    assert_int_equal(cfg->run((const unsigned char *)good, strlen(good)), CNK_OK);
    const char *bad = "[input]\nshape = 1x4x4\n[frobnicate]\n";
    int rc = cfg->run((const unsigned char *)bad, strlen(bad));
    assert_true(rc > 0);
    assert_null(cnk_fuzz_find("no-such-target"));
    /* Garbage never loads as any of the binary formats. */
    static const unsigned char junk[] = "\x00\x01garbage\xff\xfe";
    const char *binary[] = {"audio", "image", "modelfile", "tflite", "npy", "idx"};
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++) {
        rc = cnk_fuzz_find(binary[i])->run(junk, sizeof junk - 1);
        if (rc <= 0) fail_msg("%s: garbage gave status %d", binary[i], rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_harness_checks_are_live),
        cmocka_unit_test(test_crashers_and_seeds_replay_cleanly),
        cmocka_unit_test(test_bad_input_corpus_replays_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
