#include "pipeline/audio_params.h"

#include <math.h>
#include <sndfile.h>

enum { PROBE_MAX = 64 };

/* Sample rates and durations of up to PROBE_MAX evenly spread clips, from their headers only. */
static void probe_audio(const cnk_dataset *ds, int *max_rate, double *p50, double *p95)
{
    double durations[PROBE_MAX];
    int n = 0;
    *max_rate = 0;
    size_t step = ds->n_items > PROBE_MAX ? ds->n_items / PROBE_MAX : 1;
    for (size_t i = 0; i < ds->n_items && n < PROBE_MAX; i += step) {
        SF_INFO info = {0};
        SNDFILE *sf = ds->items[i].path ? sf_open(ds->items[i].path, SFM_READ, &info) : NULL;
        if (!sf) continue;
        sf_close(sf);
        if (info.samplerate <= 0) continue;
        if (info.samplerate > *max_rate) *max_rate = info.samplerate;
        durations[n++] = (double)info.frames / info.samplerate;
    }
    for (int i = 1; i < n; i++) /* insertion sort of at most PROBE_MAX values */
        for (int j = i; j > 0 && durations[j] < durations[j - 1]; j--) {
            double t = durations[j];
            durations[j] = durations[j - 1];
            durations[j - 1] = t;
        }
    *p50 = n ? durations[n / 2] : 3.0;
    *p95 = n ? durations[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1] : 3.0;
}

void cnk_audio_params_choose(const cnk_dataset *ds, int sample_rate, double segment_seconds, cnk_preprocess *p)
{
    int max_rate;
    double p50, p95;
    probe_audio(ds, &max_rate, &p50, &p95);
    int sr = sample_rate > 0 ? sample_rate : (max_rate > 0 && max_rate < 22050 ? max_rate : 22050);
    p->sample_rate = sr;
    if (sr >= 22050) {
        p->n_fft = 2048, p->hop_length = 512, p->n_mels = 128;
    } else {
        p->n_fft = 512, p->hop_length = 128, p->n_mels = 64;
    }
    p->n_scales = p->n_mels;
    double seconds = segment_seconds;
    if (seconds <= 0) {
        seconds = p50 >= 3.0 ? 3.0 : ceil(p95 * 4) / 4;
        if (seconds < 0.5) seconds = 0.5;
        if (seconds > 3.0) seconds = 3.0;
    }
    cnk_preprocess_set_segment_seconds(p, seconds);
}
