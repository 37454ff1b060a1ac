#include "pipeline/demo_data.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "core/rng.h"

#define DEMO_PI 3.14159265358979323846

static const char *const class_names[] = {"chirp", "kick", "noise_burst", "pluck"};
enum { N_CLASSES = 4 };

void cnk_demo_default_params(cnk_demo_params *params)
{
    params->clips_per_class = 40;
    params->seconds = 3.0;
    params->sample_rate = 22050;
    params->seed = 2024;
}

int cnk_demo_n_classes(void) { return N_CLASSES; }

const char *cnk_demo_class_name(int class_index)
{
    return (class_index >= 0 && class_index < N_CLASSES) ? class_names[class_index] : NULL;
}

size_t cnk_demo_clip_length(const cnk_demo_params *params)
{
    return (size_t)lround(params->seconds * params->sample_rate);
}

static double uniform(cnk_rng *rng, double lo, double hi) { return lo + (hi - lo) * cnk_rng_uniform(rng); }

/* A kick drum: a sine whose pitch falls quickly, with an exponential decay and a short click. */
static void add_kick(float *out, size_t n, int sr, size_t at, double gain, cnk_rng *rng)
{
    double f_start = uniform(rng, 110, 170), f_end = uniform(rng, 40, 55), decay = uniform(rng, 0.10, 0.20);
    double phase = 0;
    size_t len = (size_t)(0.5 * sr);
    for (size_t i = 0; i < len && at + i < n; i++) {
        double t = (double)i / sr;
        double f = f_end + (f_start - f_end) * exp(-t / 0.03);
        phase += 2 * DEMO_PI * f / sr;
        double click = i < (size_t)(0.003 * sr) ? 0.5 * (1 - (double)i / (0.003 * sr)) : 0;
        out[at + i] += (float)(gain * (sin(phase) * exp(-t / decay) + click));
    }
}

/* A plucked string: harmonics with 1/k amplitudes, the upper ones dying faster. */
static void add_pluck(float *out, size_t n, int sr, size_t at, double gain, cnk_rng *rng)
{
    static const double scale[] = {196.0, 220.0, 261.6, 293.7, 329.6, 392.0, 440.0, 523.3, 587.3, 659.3};
    double f0 = scale[cnk_rng_below(rng, 10)] * uniform(rng, 0.99, 1.01);
    double decay = uniform(rng, 0.25, 0.6);
    size_t len = (size_t)(1.0 * sr);
    for (int k = 1; k <= 8; k++) {
        double fk = f0 * k;
        if (fk > 0.45 * sr) break;
        double amp = gain / k, tau = decay / k;
        for (size_t i = 0; i < len && at + i < n; i++) {
            double t = (double)i / sr;
            out[at + i] += (float)(amp * sin(2 * DEMO_PI * fk * t) * exp(-t / tau));
        }
    }
}

/* A hi-hat-like burst: first-difference (high-passed) white noise with a fast decay. */
static void add_noise_burst(float *out, size_t n, int sr, size_t at, double gain, cnk_rng *rng)
{
    double decay = uniform(rng, 0.02, 0.07), prev = 0;
    size_t len = (size_t)(0.3 * sr);
    for (size_t i = 0; i < len && at + i < n; i++) {
        double white = cnk_rng_normal(rng);
        double t = (double)i / sr;
        out[at + i] += (float)(gain * 0.5 * (white - prev) * exp(-t / decay));
        prev = white;
    }
}

/* A sine sweep between two random frequencies (exponential), with a smooth envelope. */
static void add_chirp(float *out, size_t n, int sr, size_t at, double gain, cnk_rng *rng)
{
    double f1 = uniform(rng, 300, 1200), f2 = uniform(rng, 1500, 4000), dur = uniform(rng, 0.25, 0.7);
    if (cnk_rng_below(rng, 2)) {
        double tmp = f1;
        f1 = f2;
        f2 = tmp;
    }
    size_t len = (size_t)(dur * sr);
    double phase = 0;
    for (size_t i = 0; i < len && at + i < n; i++) {
        double u = (double)i / (double)len;
        double f = f1 * pow(f2 / f1, u);
        phase += 2 * DEMO_PI * f / sr;
        out[at + i] += (float)(gain * sin(phase) * sin(DEMO_PI * u));
    }
}

typedef void (*event_fn)(float *, size_t, int, size_t, double, cnk_rng *);
static const event_fn class_events[N_CLASSES] = {add_chirp, add_kick, add_noise_burst, add_pluck};
/* Mean seconds between events per class: the rhythm differs as well as the timbre. */
static const double class_period[2][N_CLASSES] = {{0.55, 0.43, 0.11, 0.30}, {0.95, 0.75, 0.20, 0.60}};

/* Events of one class across the clip: a tempo drawn per clip, each onset jittered. */
static void add_events(float *out, size_t n, int sr, int class_index, double gain, cnk_rng *rng)
{
    double period = uniform(rng, class_period[0][class_index], class_period[1][class_index]);
    double t = uniform(rng, 0, period);
    while (t < (double)n / sr) {
        size_t at = (size_t)(t * sr);
        class_events[class_index](out, n, sr, at, gain * uniform(rng, 0.7, 1.0), rng);
        t += period * uniform(rng, 0.85, 1.15);
    }
}

int cnk_demo_render(cnk_ctx *ctx, const cnk_demo_params *params, int class_index, int clip_index, float *out)
{
    if (class_index < 0 || class_index >= N_CLASSES || clip_index < 0)
        return cnk_fail(ctx, CNK_ERR_ARG, "demo: class %d / clip %d out of range", class_index, clip_index);
    if (params->sample_rate < 4000 || params->sample_rate > 192000 || !(params->seconds > 0.1) ||
        params->seconds > 600)
        return cnk_fail(ctx, CNK_ERR_ARG, "demo: sample rate %d or length %g s out of range", params->sample_rate,
                        params->seconds);
    size_t n = cnk_demo_clip_length(params);
    int sr = params->sample_rate;
    memset(out, 0, n * sizeof *out);
    cnk_rng rng;
    cnk_rng_seed(&rng, params->seed, (uint64_t)class_index * 1000003u + (uint64_t)clip_index);
    add_events(out, n, sr, class_index, 1.0, &rng);
    /* A quiet distractor from another class and background noise keep the task from being trivial. */
    int other = (class_index + 1 + (int)cnk_rng_below(&rng, N_CLASSES - 1)) % N_CLASSES;
    add_events(out, n, sr, other, uniform(&rng, 0.05, 0.2), &rng);
    double noise = uniform(&rng, 0.002, 0.03);
    for (size_t i = 0; i < n; i++) out[i] += (float)(noise * cnk_rng_normal(&rng));
    float peak = 0;
    for (size_t i = 0; i < n; i++) peak = fmaxf(peak, fabsf(out[i]));
    double target = uniform(&rng, 0.3, 0.95);
    float scale = peak > 0 ? (float)(target / peak) : 1.0f;
    for (size_t i = 0; i < n; i++) out[i] *= scale;
    return CNK_OK;
}

static int write_wav(cnk_ctx *ctx, const char *path, const float *samples, size_t n, int sr)
{
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc) return rc;
    SF_INFO info = {.samplerate = sr, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open_fd(fileno(af.fp), SFM_WRITE, &info, 0);
    if (!sf) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot write WAV: %s", path, sf_strerror(NULL));
    }
    sf_count_t written = sf_writef_float(sf, samples, (sf_count_t)n);
    sf_close(sf);
    if (written != (sf_count_t)n) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: short WAV write", path);
    }
    /* libsndfile wrote through the descriptor; the FILE has nothing buffered, so commit syncs and renames. */
    return cnk_afile_commit(ctx, &af);
}

static int write_class(cnk_ctx *ctx, const char *root, const cnk_demo_params *params, int k, float *buf)
{
    char path[4400]; /* root is at most ~3000 bytes (checked by cnk_demo_write) */
    if (snprintf(path, sizeof path, "%s/%s", root, class_names[k]) >= (int)sizeof path)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", root);
    int rc = cnk_mkdirs(ctx, path);
    for (int i = 0; !rc && i < params->clips_per_class; i++) {
        if (snprintf(path, sizeof path, "%s/%s/%s_%03d.wav", root, class_names[k], class_names[k], i) >=
            (int)sizeof path)
            return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", root);
        rc = cnk_demo_render(ctx, params, k, i, buf);
        if (!rc) rc = write_wav(ctx, path, buf, cnk_demo_clip_length(params), params->sample_rate);
        cnk_progress(ctx, "demo set", (size_t)(k * params->clips_per_class + i + 1),
                     (size_t)(N_CLASSES * params->clips_per_class), NULL);
    }
    return rc;
}

int cnk_demo_write(cnk_ctx *ctx, const char *dir, const cnk_demo_params *params)
{
    if (params->clips_per_class < 1 || params->clips_per_class > 100000)
        return cnk_fail(ctx, CNK_ERR_ARG, "demo: %d clips per class is out of range", params->clips_per_class);
    if (access(dir, F_OK) == 0) return cnk_fail(ctx, CNK_ERR_IO, "%s: already exists", dir);
    if (strlen(dir) > 3000) return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", dir);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", dir);
    int rc = cnk_mkdirs(ctx, dir); /* makes the parents; the leaf itself is replaced below */
    if (rc) return rc;
    rmdir(dir);
    if (!mkdtemp(tmp)) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    float *buf = malloc(cnk_demo_clip_length(params) * sizeof *buf);
    if (!buf) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "demo: out of memory");
    for (int k = 0; !rc && k < N_CLASSES; k++) rc = write_class(ctx, tmp, params, k, buf);
    free(buf);
    if (!rc && rename(tmp, dir) != 0) rc = cnk_fail(ctx, CNK_ERR_IO, "%s: cannot rename into place: %s", dir,
                                                    strerror(errno));
    if (rc) { /* remove the partial tree: only files we wrote, two levels deep */
        cnk_ctx quiet = *ctx;
        cnk_pathlist files = {0};
        if (cnk_list_files(&quiet, tmp, 1, &files) == CNK_OK)
            for (size_t i = 0; i < files.count; i++) unlink(files.paths[i]);
        cnk_pathlist_release(&files);
        for (int k = 0; k < N_CLASSES; k++) {
            char sub[4200];
            snprintf(sub, sizeof sub, "%s/%s", tmp, class_names[k]);
            rmdir(sub);
        }
        rmdir(tmp);
    }
    return rc;
}
