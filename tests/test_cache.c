/* Tests for pipeline/cache: keys follow content and parameters, entries round-trip (and are real .npy files
 * numpy can load), every kind of corruption is a miss that removes the entry, concurrent writers are safe.
 * test-libs: core pipeline */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "core/rng.h"
#include "pipeline/cache.h"

static int popcount64(uint64_t x)
{
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

static int key_equal(const cnk_cache_key *a, const cnk_cache_key *b) { return a->hi == b->hi && a->lo == b->lo; }

static void test_keys_follow_content_and_params(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "cache_keys");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    /* 200 KB spans several 64 KiB read chunks and an odd tail. */
    size_t size = 200 * 1000 + 3;
    unsigned char *bytes = malloc(size);
    cnk_rng rng;
    cnk_rng_seed(&rng, 1, 0);
    for (size_t i = 0; i < size; i++) bytes[i] = (unsigned char)cnk_rng_u64(&rng);
    snprintf(path, sizeof path, "%s/clip.wav", dir);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, bytes, size), CNK_OK);

    cnk_cache_key from_file, from_bytes, other_params, flipped;
    assert_int_equal(cnk_cache_key_file(&ctx, path, "mel sr=22050 n_mels=128", &from_file), CNK_OK);
    cnk_cache_key_bytes(bytes, size, "mel sr=22050 n_mels=128", &from_bytes);
    assert_true(key_equal(&from_file, &from_bytes));
    cnk_cache_key_bytes(bytes, size, "mel sr=22050 n_mels=64", &other_params);
    assert_false(key_equal(&from_file, &other_params));

    /* One flipped bit anywhere changes about half of the 128 key bits. */
    const size_t positions[] = {0, 7, 8, 65535, 65536, size - 1};
    for (size_t p = 0; p < sizeof positions / sizeof *positions; p++) {
        bytes[positions[p]] ^= 0x10;
        cnk_cache_key_bytes(bytes, size, "mel sr=22050 n_mels=128", &flipped);
        bytes[positions[p]] ^= 0x10;
        int changed = popcount64(flipped.hi ^ from_bytes.hi) + popcount64(flipped.lo ^ from_bytes.lo);
        assert_in_range(changed, 40, 88);
    }
    /* Params and content do not run into each other; trailing zero bytes count. */
    cnk_cache_key a, b;
    cnk_cache_key_bytes("bc", 2, "a", &a);
    cnk_cache_key_bytes("c", 1, "ab", &b);
    assert_false(key_equal(&a, &b));
    cnk_cache_key_bytes("x", 1, "", &a);
    cnk_cache_key_bytes("x\0", 2, "", &b);
    assert_false(key_equal(&a, &b));
    cnk_cache_key_bytes("", 0, NULL, &a);
    cnk_cache_key_bytes("", 0, "", &b);
    assert_true(key_equal(&a, &b));
    /* 20,000 short distinct inputs: no two keys share even their high 64 bits. */
    uint64_t *highs = malloc(20000 * sizeof *highs);
    for (int i = 0; i < 20000; i++) {
        char text[32];
        snprintf(text, sizeof text, "file%d.wav", i);
        cnk_cache_key_bytes(text, strlen(text), "p", &a);
        highs[i] = a.hi;
    }
    for (int i = 0; i < 20000; i++)
        for (int j = i + 1; j < i + 50 && j < 20000; j++) assert_true(highs[i] != highs[j]);
    free(highs);
    char hex[33];
    a.hi = 0x0123456789abcdefULL;
    a.lo = 0xfedcba9876543210ULL;
    cnk_cache_key_hex(&a, hex);
    assert_string_equal(hex, "0123456789abcdeffedcba9876543210");
    assert_int_equal(cnk_cache_key_file(&ctx, "/nonexistent/clip.wav", "p", &a), CNK_ERR_IO);
    free(bytes);
    tu_rmtree(dir);
}

static void fill_array(float *data, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) data[i] = scale * ((float)i - 7.25f);
}

static void test_put_get_and_numpy_reads_it(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "cache_rt");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_cache cache;
    assert_int_equal(cnk_cache_init(&ctx, &cache, dir), CNK_OK);
    cnk_cache_key key;
    cnk_cache_key_bytes("audio", 5, "mel", &key);
    cnk_array got;
    int found = 1;
    assert_int_equal(cnk_cache_get(&ctx, &cache, &key, &got, &found), CNK_OK);
    assert_false(found);
    assert_string_equal(cnk_error(&ctx), ""); /* a miss is not an error */

    float data[4 * 33];
    fill_array(data, 4 * 33, 0.5f);
    const size_t shape[2] = {4, 33};
    assert_int_equal(cnk_cache_put(&ctx, &cache, &key, data, 2, shape), CNK_OK);
    assert_int_equal(cnk_cache_get(&ctx, &cache, &key, &got, &found), CNK_OK);
    assert_true(found);
    assert_int_equal(got.ndim, 2);
    assert_true(got.shape[0] == 4 && got.shape[1] == 33);
    assert_memory_equal(got.data, data, sizeof data);
    cnk_array_release(&got);

    /* The entry is a plain .npy to numpy (the trailer after the data is ignored by np.load). */
    assert_int_equal(cnk_cache_entry_path(&ctx, &cache, &key, path, sizeof path), CNK_OK);
    char hex[33];
    cnk_cache_key_hex(&key, hex);
    assert_non_null(strstr(path, hex));
    assert_int_equal(tu_system("/usr/bin/python3 -c \"import numpy as np, sys; a = np.load(sys.argv[1]); "
                               "sys.exit(0 if a.shape == (4, 33) and a[1, 2] == 0.5 * (35 - 7.25) else 1)\" '%s'",
                               path),
                     0);
    /* No temporary files left behind. */
    cnk_pathlist files;
    assert_int_equal(cnk_list_files(&ctx, dir, 1, &files), CNK_OK);
    assert_int_equal(files.count, 1);
    cnk_pathlist_release(&files);
    tu_rmtree(dir);
}

/* Replaces the entry's bytes by a corrupted copy and checks it is a miss and gets removed. */
static void expect_corrupt_is_miss(const cnk_cache *cache, const cnk_cache_key *key, const unsigned char *bytes,
                                   size_t size, const char *what)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4200];
    assert_int_equal(cnk_cache_entry_path(&ctx, cache, key, path, sizeof path), CNK_OK);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, bytes, size), CNK_OK);
    cnk_array got;
    int found = 1;
    assert_int_equal(cnk_cache_get(&ctx, cache, key, &got, &found), CNK_OK);
    if (found) fail_msg("a %s entry was trusted", what);
    assert_null(got.data);
    assert_false(cnk_is_file(path));
    assert_string_equal(cnk_error(&ctx), "");
}

static void test_corrupt_entries_are_recomputed(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "cache_corrupt");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_cache cache;
    assert_int_equal(cnk_cache_init(&ctx, &cache, dir), CNK_OK);
    cnk_cache_key key, other;
    cnk_cache_key_bytes("clip", 4, "stft", &key);
    cnk_cache_key_bytes("clip2", 5, "stft", &other);
    float data[100];
    fill_array(data, 100, 1.0f);
    const size_t shape[1] = {100};
    assert_int_equal(cnk_cache_put(&ctx, &cache, &key, data, 1, shape), CNK_OK);
    assert_int_equal(cnk_cache_entry_path(&ctx, &cache, &key, path, sizeof path), CNK_OK);
    unsigned char *good;
    size_t size;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &good, &size), CNK_OK);
    assert_int_equal(size, 128 + 400 + 16);
    unsigned char *bad = malloc(size);

    memcpy(bad, good, size);
    bad[128 + 200] ^= 1; /* one bit of the data */
    expect_corrupt_is_miss(&cache, &key, bad, size, "bit-flipped");
    expect_corrupt_is_miss(&cache, &key, good, size - 1, "truncated");
    expect_corrupt_is_miss(&cache, &key, good, size - 16, "trailer-less");
    expect_corrupt_is_miss(&cache, &key, good, 5, "5-byte");
    expect_corrupt_is_miss(&cache, &key, (const unsigned char *)"", 0, "empty");
    memcpy(bad, good, size);
    bad[size - 16] = 'X'; /* the trailer's magic */
    expect_corrupt_is_miss(&cache, &key, bad, size, "bad-magic");
    /* A sound entry of another key placed under this key's name. */
    assert_int_equal(cnk_cache_put(&ctx, &cache, &other, data, 1, shape), CNK_OK);
    char other_path[4200];
    assert_int_equal(cnk_cache_entry_path(&ctx, &cache, &other, other_path, sizeof other_path), CNK_OK);
    unsigned char *foreign;
    size_t foreign_size;
    assert_int_equal(cnk_read_file(&ctx, other_path, 0, &foreign, &foreign_size), CNK_OK);
    expect_corrupt_is_miss(&cache, &key, foreign, foreign_size, "misplaced");
    free(foreign);
    /* A valid trailer over a broken .npy header (CRC recomputed so only the .npy check can catch it). */
    memcpy(bad, good, size);
    bad[0] = 'X';
    uLong crc = crc32(0L, bad, (uInt)(size - 16));
    for (int i = 0; i < 4; i++) bad[size - 8 + i] = (unsigned char)(crc >> (8 * i));
    expect_corrupt_is_miss(&cache, &key, bad, size, "bad-npy");

    /* After a miss the caller recomputes and puts: a hit again. */
    assert_int_equal(cnk_cache_put(&ctx, &cache, &key, data, 1, shape), CNK_OK);
    cnk_array got;
    int found;
    assert_int_equal(cnk_cache_get(&ctx, &cache, &key, &got, &found), CNK_OK);
    assert_true(found);
    assert_memory_equal(got.data, data, sizeof data);
    cnk_array_release(&got);
    free(bad);
    free(good);
    tu_rmtree(dir);
}

/* Several processes put the same key over and over while others read it: every hit is the whole value. */
static void test_concurrent_writers(void **state)
{
    (void)state;
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "cache_concurrent");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_cache cache;
    assert_int_equal(cnk_cache_init(&ctx, &cache, dir), CNK_OK);
    cnk_cache_key key;
    cnk_cache_key_bytes("shared", 6, "mel", &key);
    enum { N = 20000 };
    float *data = malloc(N * sizeof *data);
    fill_array(data, N, 0.25f);
    const size_t shape[2] = {100, 200};
    int rounds = tu_sanitized() ? 10 : 25;
    pid_t children[3];
    for (int c = 0; c < 3; c++) {
        children[c] = fork();
        assert_true(children[c] >= 0);
        if (children[c] == 0) {
            cnk_ctx child;
            tu_ctx(&child);
            int bad = 0;
            for (int r = 0; r < rounds; r++) {
                if (cnk_cache_put(&child, &cache, &key, data, 2, shape) != CNK_OK) bad = 1;
                cnk_array got;
                int found = 0;
                if (cnk_cache_get(&child, &cache, &key, &got, &found) != CNK_OK) bad = 1;
                if (found && (got.shape[0] != 100 || memcmp(got.data, data, N * sizeof *data) != 0)) bad = 1;
                cnk_array_release(&got);
            }
            _exit(bad);
        }
    }
    /* Read while the children write, until all have finished. */
    int hits = 0, reads = 0, running = 3, statuses[3] = {0};
    while (running) {
        cnk_array got;
        int found = 0;
        assert_int_equal(cnk_cache_get(&ctx, &cache, &key, &got, &found), CNK_OK);
        reads++;
        if (found) {
            hits++;
            assert_memory_equal(got.data, data, N * sizeof *data);
        } else {
            assert_int_equal(hits, 0); /* once published, an entry never disappears or reads as corrupt */
        }
        cnk_array_release(&got);
        for (int c = 0; c < 3; c++)
            if (children[c] > 0 && waitpid(children[c], &statuses[c], WNOHANG) == children[c]) {
                children[c] = 0;
                running--;
            }
    }
    for (int c = 0; c < 3; c++) {
        assert_true(WIFEXITED(statuses[c]));
        assert_int_equal(WEXITSTATUS(statuses[c]), 0);
    }
    cnk_array got;
    int found = 0;
    assert_int_equal(cnk_cache_get(&ctx, &cache, &key, &got, &found), CNK_OK);
    assert_true(found);
    assert_memory_equal(got.data, data, N * sizeof *data);
    cnk_array_release(&got);
    cnk_pathlist files;
    assert_int_equal(cnk_list_files(&ctx, dir, 1, &files), CNK_OK);
    assert_int_equal(files.count, 1); /* one entry, no temporary leftovers */
    cnk_pathlist_release(&files);
    print_message("parent saw the whole entry in %d of %d reads while 3 writers raced\n", hits, reads);
    free(data);
    tu_rmtree(dir);
}

static void test_default_folder(void **state)
{
    (void)state;
    char dir[4096], want[4200];
    tu_tmpdir(dir, sizeof dir, "cache_xdg");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char *old = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", dir, 1);
    cnk_cache cache;
    assert_int_equal(cnk_cache_init(&ctx, &cache, NULL), CNK_OK);
    snprintf(want, sizeof want, "%s/cnnkit", dir);
    assert_string_equal(cache.dir, want);
    assert_true(cnk_is_dir(want));
    if (old) setenv("XDG_CACHE_HOME", old, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(old);
    /* A cache folder that cannot be made is an error, not a crash. */
    char file[4200];
    snprintf(file, sizeof file, "%s/plain", dir);
    assert_int_equal(cnk_write_file_atomic(&ctx, file, "x", 1), CNK_OK);
    snprintf(want, sizeof want, "%s/plain/sub", dir);
    assert_int_not_equal(cnk_cache_init(&ctx, &cache, want), CNK_OK);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_follow_content_and_params),
        cmocka_unit_test(test_put_get_and_numpy_reads_it),
        cmocka_unit_test(test_corrupt_entries_are_recomputed),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_default_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
