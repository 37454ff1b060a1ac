/* Tests for pipeline/distributed: shards cover a batch exactly once in order, round-robin file ownership,
 * threads per rank, and the collectives. Run alone (ctest) it checks the single-process implementation;
 * tests/test_mpi.sh also runs it with `mpirun -np 2`, where the same tests check MPI's answers (a broadcast
 * from rank 0, the gradient allreduce against the global-batch mean, averages, status agreement, the
 * feature cache filled by both ranks' shards, and the batch-norm semantics of a sharded step).
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "pipeline/cache.h"
#include "pipeline/dataset.h"
#include "pipeline/distributed.h"
#include "pipeline/preprocess.h"

static cnk_dist dist; /* one MPI session for the whole program (MPI_Init may run only once) */

static void test_shards_cover_batch_in_order(void **state)
{
    (void)state;
    for (int size = 1; size <= 5; size++) {
        for (size_t n = 0; n <= 13; n++) {
            size_t next = 0, biggest = 0, smallest = (size_t)-1;
            for (int rank = 0; rank < size; rank++) {
                cnk_dist d;
                cnk_dist_single(&d);
                d.rank = rank, d.size = size;
                size_t from, count;
                cnk_dist_shard(&d, n, &from, &count);
                assert_int_equal(from, next); /* contiguous, rank order = single-process order */
                next += count;
                if (count > biggest) biggest = count;
                if (count < smallest) smallest = count;
            }
            assert_int_equal(next, n);
            assert_true(biggest - smallest <= 1);
        }
    }
    size_t from, count;
    cnk_dist_shard(NULL, 7, &from, &count); /* NULL = one process: everything */
    assert_int_equal(from, 0);
    assert_int_equal(count, 7);
}

static void test_ownership_and_threads(void **state)
{
    (void)state;
    cnk_dist d;
    cnk_dist_single(&d);
    d.rank = 1, d.size = 3, d.local_size = 3;
    int owned = 0;
    for (size_t i = 0; i < 30; i++) owned += cnk_dist_owns(&d, i);
    assert_int_equal(owned, 10);
    assert_true(cnk_dist_owns(&d, 4) && !cnk_dist_owns(&d, 5));
    assert_false(cnk_dist_is_root(&d));
    assert_true(cnk_dist_is_root(NULL));
    assert_int_equal(cnk_dist_default_threads(&d, 8), 2);
    assert_int_equal(cnk_dist_default_threads(&d, 2), 1); /* never 0, never more than the cores */
    assert_int_equal(cnk_dist_default_threads(NULL, 4), 4);
}

/* Rank r's "gradient" over its shard of a global batch: each sample k contributes k + 1 to every element, so
 * the mean over the global batch is known whatever the shards. */
static void test_gradient_allreduce_gives_global_mean(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const size_t n_global = 11, n_params = 1000;
    size_t from, count;
    cnk_dist_shard(&dist, n_global, &from, &count);
    float *grads = malloc(n_params * sizeof *grads);
    assert_non_null(grads);
    double local_mean = 0;
    for (size_t k = from; k < from + count; k++) local_mean += (double)(k + 1);
    local_mean = count ? local_mean / (double)count : 0;
    for (size_t i = 0; i < n_params; i++) grads[i] = (float)(local_mean * (1.0 + (double)i / n_params));
    assert_int_equal(cnk_dist_allreduce_gradients(&ctx, &dist, grads, n_params, count, n_global), CNK_OK);
    double global_mean = (double)(n_global + 1) / 2.0; /* mean of 1..n */
    for (size_t i = 0; i < n_params; i++)
        assert_float_equal(grads[i], global_mean * (1.0 + (double)i / n_params), 1e-4);
    /* More local samples than the global batch is a caller's bug (only checked when there is a reduction). */
    if (cnk_dist_size(&dist) > 1)
        assert_int_equal(cnk_dist_allreduce_gradients(&ctx, &dist, grads, 0, 5, 4), CNK_ERR_INTERNAL);
    free(grads);
}

static void test_broadcast_sum_average_agree(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    int rank = cnk_dist_rank(&dist), size = cnk_dist_size(&dist);
    float weights[5];
    for (int i = 0; i < 5; i++) weights[i] = (float)(rank * 100 + i);
    assert_int_equal(cnk_dist_broadcast_floats(&ctx, &dist, weights, 5), CNK_OK);
    for (int i = 0; i < 5; i++) assert_float_equal(weights[i], (float)i, 0); /* rank 0's values */
    double sums[2] = {1.0, (double)rank};
    assert_int_equal(cnk_dist_sum_doubles(&ctx, &dist, sums, 2), CNK_OK);
    assert_float_equal(sums[0], size, 0);
    assert_float_equal(sums[1], size * (size - 1) / 2.0, 0);
    float running[3] = {(float)rank, 2.0f, (float)(2 * rank)};
    assert_int_equal(cnk_dist_average_floats(&ctx, &dist, running, 3), CNK_OK);
    assert_float_equal(running[0], (size - 1) / 2.0, 1e-6);
    assert_float_equal(running[1], 2.0, 1e-6);
    assert_float_equal(running[2], (double)(size - 1), 1e-6);
    assert_int_equal(cnk_dist_agree(&ctx, &dist, CNK_OK), CNK_OK);
    /* The last rank fails: every rank sees the failure (a single process sees its own). */
    int mine = rank == size - 1 ? CNK_ERR_IO : CNK_OK;
    assert_int_equal(cnk_dist_agree(&ctx, &dist, mine), CNK_ERR_IO);
    if (mine == CNK_OK) assert_non_null(strstr(cnk_error(&ctx), "another rank failed"));
    assert_int_equal(cnk_dist_barrier(&ctx, &dist), CNK_OK);
}

/* Ten FSDD clips in two class folders; with several ranks each computes its own share into the shared cache
 * folder, and after the call every clip's entry exists. In one process the call does nothing. The folders come
 * from test_mpi.sh (CNK_DIST_DATA, CNK_DIST_CACHE) under mpirun; otherwise they are made here. */
static void test_feature_cache_split_across_ranks(void **state)
{
    (void)state;
    char data[4096], cache_dir[4096], src[4096];
    const char *env_data = getenv("CNK_DIST_DATA"), *env_cache = getenv("CNK_DIST_CACHE");
    if (env_data && env_cache) {
        snprintf(data, sizeof data, "%s", env_data);
        snprintf(cache_dir, sizeof cache_dir, "%s", env_cache);
    } else {
        char tmp[2048];
        tu_tmpdir(tmp, sizeof tmp, "dist");
        snprintf(data, sizeof data, "%s/data", tmp);
        snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmp);
        for (int i = 0; i < 10; i++)
            assert_int_equal(tu_system("mkdir -p '%s/%d' && cp '%s/%d/%d_jackson_%d.wav' '%s/%d/'", data, i / 5,
                                       tu_shared(src, sizeof src, "datasets/fsdd"), i / 5, i / 5, i % 5, data, i / 5),
                             0);
    }
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    int rc = cnk_dataset_open(&ctx, data, &dopts, &ds);
    if (rc) fprintf(stderr, "%s\n", cnk_error(&ctx));
    assert_int_equal(rc, CNK_OK);
    assert_int_equal(ds.n_items, 10);
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    p.sample_rate = 8000, p.n_fft = 512, p.hop_length = 128, p.n_mels = 32;
    rc = cnk_dist_warm_feature_cache(&ctx, &dist, &ds, &p, cache_dir);
    if (rc) fprintf(stderr, "%s\n", cnk_error(&ctx));
    assert_int_equal(rc, CNK_OK);
    cnk_cache cache;
    assert_int_equal(cnk_cache_init(&ctx, &cache, cache_dir), CNK_OK);
    char params[2048], entry[4096];
    cnk_preprocess_feature_key(&p, params, sizeof params);
    int present = 0;
    for (size_t i = 0; i < ds.n_items; i++) {
        cnk_cache_key key;
        assert_int_equal(cnk_cache_key_file(&ctx, ds.items[i].path, params, &key), CNK_OK);
        assert_int_equal(cnk_cache_entry_path(&ctx, &cache, &key, entry, sizeof entry), CNK_OK);
        present += access(entry, R_OK) == 0;
    }
    assert_int_equal(present, cnk_dist_size(&dist) > 1 ? 10 : 0);
    cnk_dataset_release(&ds);
    if (!env_data) tu_rmtree(data);
}

/* ---- the documented batch-norm semantics ("ghost batch norm") ---- */

static const char *const bn_cfg = "[input]\nname = input\nshape = 1x6x6\n\n"
                                  "[conv2d]\nname = conv\nfilters = 4\nsize = 3\npadding = same\nbias = 0\n\n"
                                  "[batchnorm]\nname = bn\nactivation = relu\n\n"
                                  "[global_avgpool]\nname = gap\n\n"
                                  "[dense]\nname = logits\nunits = 3\n";

enum { BN_BATCH = 9, BN_IN = 36, BN_CLASSES = 3 };

/* Forward + backward of samples [from, from + n) of the batch: the model's gradients (of their mean loss) and
 * its buffers (running statistics updated from these n samples). */
static void shard_gradients(cnk_ctx *ctx, cnk_model *m, const float *x, const int *y, size_t from, size_t n)
{
    float dlogits[BN_BATCH * BN_CLASSES];
    const float *inputs[1] = {x + from * BN_IN};
    cnk_model_zero_grad(m);
    if (n == 0) return;
    assert_int_equal(cnk_model_forward(ctx, m, inputs, (int)n, CNK_MODE_TRAIN), CNK_OK);
    cnk_loss_softmax_ce(cnk_model_output(m, 0, NULL), y + from, (int)n, BN_CLASSES, NULL, dlogits);
    const float *douts[1] = {dlogits};
    assert_int_equal(cnk_model_backward(ctx, m, douts), CNK_OK);
}

/* With N ranks a step's gradient is the mean over the shards of each shard's gradient with batch norm over that
 * shard alone, weighted by shard size; the running statistics are the average of the shards' updates. This
 * computes that reference in one process (every shard in turn) and compares it with what the ranks get through
 * cnk_dist_allreduce_gradients / cnk_dist_average_floats. With several ranks it also checks that the result is
 * not the global-batch one (the documented difference exists, so the test can tell them apart). */
static void test_ghost_batchnorm_gradient(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_arch arch;
    assert_int_equal(cnk_cfg_parse(&ctx, bn_cfg, "test:bn", &arch), CNK_OK);
    cnk_model *m;
    assert_int_equal(cnk_model_create(&ctx, &arch, BN_BATCH, &m), CNK_OK);
    cnk_model_init_params(m, 3);
    size_t n_params = arch.n_params, n_buffers = arch.n_buffers;
    float x[BN_BATCH * BN_IN];
    int y[BN_BATCH];
    cnk_rng rng;
    cnk_rng_seed(&rng, 11, 0);
    for (int i = 0; i < BN_BATCH * BN_IN; i++) x[i] = (float)cnk_rng_normal(&rng) + (float)(i / BN_IN % 3);
    for (int i = 0; i < BN_BATCH; i++) y[i] = i % BN_CLASSES;
    float *buffers0 = malloc(n_buffers * sizeof(float)), *ref_grad = calloc(n_params, sizeof(float));
    float *ref_buf = calloc(n_buffers, sizeof(float)), *full_grad = malloc(n_params * sizeof(float));
    float *grad = malloc(n_params * sizeof(float)), *buf = malloc(n_buffers * sizeof(float));
    assert_true(buffers0 && ref_grad && ref_buf && full_grad && grad && buf);
    memcpy(buffers0, cnk_model_buffers(m), n_buffers * sizeof(float));
    /* The reference: every rank's shard in turn, from the same starting buffers. */
    int size = cnk_dist_size(&dist);
    for (int rank = 0; rank < size; rank++) {
        cnk_dist d = dist;
        d.rank = rank;
        size_t from, n;
        cnk_dist_shard(&d, BN_BATCH, &from, &n);
        memcpy(cnk_model_buffers(m), buffers0, n_buffers * sizeof(float));
        shard_gradients(&ctx, m, x, y, from, n);
        for (size_t i = 0; i < n_params; i++) ref_grad[i] += cnk_model_grads(m)[i] * (float)n / BN_BATCH;
        for (size_t i = 0; i < n_buffers; i++) ref_buf[i] += cnk_model_buffers(m)[i] / (float)size;
    }
    memcpy(cnk_model_buffers(m), buffers0, n_buffers * sizeof(float));
    shard_gradients(&ctx, m, x, y, 0, BN_BATCH); /* global batch norm, for contrast */
    memcpy(full_grad, cnk_model_grads(m), n_params * sizeof(float));
    /* What this rank gets. */
    size_t from, n;
    cnk_dist_shard(&dist, BN_BATCH, &from, &n);
    memcpy(cnk_model_buffers(m), buffers0, n_buffers * sizeof(float));
    shard_gradients(&ctx, m, x, y, from, n);
    memcpy(grad, cnk_model_grads(m), n_params * sizeof(float));
    memcpy(buf, cnk_model_buffers(m), n_buffers * sizeof(float));
    assert_int_equal(cnk_dist_allreduce_gradients(&ctx, &dist, grad, n_params, n, BN_BATCH), CNK_OK);
    assert_int_equal(cnk_dist_average_floats(&ctx, &dist, buf, n_buffers), CNK_OK);
    tu_assert_close(grad, ref_grad, n_params, 1e-6, 1e-5, "gradient vs per-shard batch-norm reference");
    tu_assert_close(buf, ref_buf, n_buffers, 1e-6, 1e-5, "averaged running statistics");
    if (size > 1) assert_true(tu_max_abs_diff(grad, full_grad, n_params, NULL) > 1e-4);
    free(buffers0), free(ref_grad), free(ref_buf), free(full_grad), free(grad), free(buf);
    cnk_model_free(m);
    cnk_arch_release(&arch);
}

static void test_single_process_init(void **state)
{
    (void)state;
    cnk_dist d;
    cnk_dist_single(&d);
    assert_int_equal(d.rank, 0);
    assert_int_equal(d.size, 1);
    assert_true(d.timeout_seconds > 0);
    cnk_dist_abort(&d, 3); /* one process: returns */
    cnk_dist_finalize(&d);
}

int main(void)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    if (cnk_dist_init(&ctx, &dist)) {
        fprintf(stderr, "test_distributed: %s\n", cnk_error(&ctx));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_cover_batch_in_order),
        cmocka_unit_test(test_ownership_and_threads),
        cmocka_unit_test(test_gradient_allreduce_gives_global_mean),
        cmocka_unit_test(test_broadcast_sum_average_agree),
        cmocka_unit_test(test_feature_cache_split_across_ranks),
        cmocka_unit_test(test_ghost_batchnorm_gradient),
        cmocka_unit_test(test_single_process_init),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cnk_dist_finalize(&dist);
    return failed;
}
