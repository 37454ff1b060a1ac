/* bench_allreduce.c: the cost of one gradient allreduce (pipeline/distributed.h) for the built-in models'
 * gradient sizes, to check the scaling model of bench/README.md against this machine's MPI transport.
 *     mpirun -np 2 build/bench_allreduce [REPEATS]
 * Rank 0 prints, per size, the median milliseconds of one allreduce and the bus bandwidth it implies
 * (2 (p-1)/p * bytes / time, the ring algorithm's traffic per rank). Outside mpirun it reports one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/distributed.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        size_t n_params;
    } sizes[] = {{"fusion", 190942}, {"cnn", 241898}, {"mlp", 669706}, {"mobilenet_v2", 3504872},
                 {"mobilenet_v1", 4231976}};
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1 || repeats > 100000) repeats = 20;
    cnk_ctx ctx;
    cnk_ctx_init(&ctx);
    cnk_dist dist;
    if (cnk_dist_init(&ctx, &dist)) {
        fprintf(stderr, "bench_allreduce: %s\n", cnk_error(&ctx));
        return 3;
    }
    double *times = malloc((size_t)repeats * sizeof *times);
    float *grads = malloc(sizes[4].n_params * sizeof *grads);
    int rc = times && grads ? CNK_OK : CNK_ERR_NOMEM;
    if (cnk_dist_is_root(&dist) && !rc) printf("%-14s %10s %10s %12s  (%d ranks)\n", "model", "MB", "ms", "bus_GB_per_s", dist.size);
    for (size_t s = 0; !rc && s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s].n_params;
        for (int r = -3; !rc && r < repeats; r++) { /* three untimed rounds first */
            for (size_t i = 0; i < n; i++) grads[i] = 1.0f;
            rc = cnk_dist_barrier(&ctx, &dist);
            double t0 = now_seconds();
            if (!rc) rc = cnk_dist_allreduce_gradients(&ctx, &dist, grads, n, 1, (size_t)dist.size);
            if (r >= 0) times[r] = now_seconds() - t0;
        }
        if (rc) break;
        qsort(times, (size_t)repeats, sizeof *times, compare_doubles);
        double median = times[repeats / 2], bytes = 4.0 * (double)n;
        double bus = dist.size > 1 ? 2.0 * (dist.size - 1) / dist.size * bytes / median / 1e9 : 0;
        if (cnk_dist_is_root(&dist)) printf("%-14s %10.2f %10.3f %12.2f\n", sizes[s].name, bytes / 1e6, median * 1e3, bus);
    }
    if (rc) fprintf(stderr, "bench_allreduce: %s\n", rc == CNK_ERR_NOMEM ? "out of memory" : cnk_error(&ctx));
    free(times);
    free(grads);
    if (rc) cnk_dist_abort(&dist, 3);
    cnk_dist_finalize(&dist);
    return rc ? 3 : 0;
}
