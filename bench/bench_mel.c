/* bench_mel.c: single-thread speed of cnnkit's mel spectrogram (librosa defaults + dB) and of the 64-scale
 * wavelet scalogram on 30 s clips at 22050 Hz, in process CPU time (a busy machine distorts it less).
 * Usage: bench_mel [DIR_WITH_AUDIO] [--repeat N].
 * Prints one `name clips_per_s=X ms_per_clip=Y` line per feature; bench/run_mel.sh compares with torchaudio. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fsutil.h"
#include "features/audio.h"
#include "features/spectrogram.h"
#include "features/wavelet.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct clips {
    cnk_audio items[64];
    int count;
} clips;

static int load_clips(cnk_ctx *ctx, const char *dir, clips *c)
{
    cnk_pathlist files;
    if (cnk_list_files(ctx, dir, 1, &files) != CNK_OK) return -1;
    c->count = 0;
    for (size_t i = 0; i < files.count && c->count < 64; i++) {
        if (!cnk_audio_is_audio_path(files.paths[i])) continue;
        if (cnk_audio_load(ctx, files.paths[i], 22050, &c->items[c->count]) != CNK_OK) {
            fprintf(stderr, "bench_mel: %s\n", cnk_error(ctx));
            continue;
        }
        /* Exactly 30 s each, as the Python side does. */
        if (c->items[c->count].n_samples > 30 * 22050) c->items[c->count].n_samples = 30 * 22050;
        c->count++;
    }
    cnk_pathlist_release(&files);
    return c->count > 0 ? 0 : -1;
}

static double time_mel(cnk_ctx *ctx, const clips *c, int repeat, double *checksum)
{
    cnk_spec_params p;
    cnk_spec_params_default(&p, 22050);
    cnk_spec *spec;
    if (cnk_spec_create(ctx, &p, &spec) != CNK_OK) return -1;
    float *out = malloc(128 * cnk_spec_n_frames(spec, 30 * 22050) * sizeof *out);
    if (!out) return -1;
    double start = now_seconds();
    for (int r = 0; r < repeat; r++)
        for (int i = 0; i < c->count; i++) {
            size_t n = 128 * cnk_spec_n_frames(spec, c->items[i].n_samples);
            cnk_spec_compute(spec, c->items[i].samples, c->items[i].n_samples, out);
            cnk_power_to_db(out, n, 1.0f, 1e-10f, 80.0f);
            *checksum += out[n / 2];
        }
    double elapsed = now_seconds() - start;
    free(out);
    cnk_spec_free(spec);
    return elapsed;
}

static double time_wavelet(cnk_ctx *ctx, const clips *c, int repeat, double *checksum)
{
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, 22050);
    cnk_wavelet *w;
    if (cnk_wavelet_create(ctx, &p, &w) != CNK_OK) return -1;
    float *out = malloc(64 * cnk_wavelet_n_frames(w, 30 * 22050) * sizeof *out);
    if (!out) return -1;
    /* The first clip makes the FFT plans for this length; time the steady state like the mel plan. */
    cnk_wavelet_compute(ctx, w, c->items[0].samples, c->items[0].n_samples, out);
    double start = now_seconds();
    for (int r = 0; r < repeat; r++)
        for (int i = 0; i < c->count; i++) {
            size_t n = 64 * cnk_wavelet_n_frames(w, c->items[i].n_samples);
            if (cnk_wavelet_compute(ctx, w, c->items[i].samples, c->items[i].n_samples, out) != CNK_OK) return -1;
            cnk_power_to_db(out, n, 1.0f, 1e-10f, 80.0f);
            *checksum += out[n / 2];
        }
    double elapsed = now_seconds() - start;
    free(out);
    cnk_wavelet_free(w);
    return elapsed;
}

int main(int argc, char **argv)
{
    const char *dir = "../shared/datasets/gtzan-mini/wav";
    int repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else
            dir = argv[i];
    }
    if (repeat < 1) repeat = 1;
    cnk_ctx ctx;
    cnk_ctx_init(&ctx);
    ctx.threads = 1;
    clips c;
    if (load_clips(&ctx, dir, &c) != 0) {
        fprintf(stderr, "bench_mel: no audio clips under %s\n", dir);
        return 3;
    }
    double checksum = 0;
    double mel = time_mel(&ctx, &c, repeat, &checksum);
    double wav = time_wavelet(&ctx, &c, repeat, &checksum);
    if (mel < 0 || wav < 0) {
        fprintf(stderr, "bench_mel: %s\n", cnk_error(&ctx));
        return 3;
    }
    double runs = (double)repeat * c.count;
    printf("clips=%d seconds_per_clip=30 sr=22050 threads=1 checksum=%.3f\n", c.count, checksum);
    printf("cnnkit_mel clips_per_s=%.2f ms_per_clip=%.2f\n", runs / mel, 1000 * mel / runs);
    printf("cnnkit_wavelet64 clips_per_s=%.2f ms_per_clip=%.2f\n", runs / wav, 1000 * wav / runs);
    printf("wavelet_over_mel=%.2f\n", wav / mel);
    return 0;
}
