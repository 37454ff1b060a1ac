#include "pipeline/audio_params.h"

#include <math.h>
#include <sndfile.h>

enum { PROBE_MAX = 64 };

/* Speech defaults, chosen on held-out VALIDATION speakers of FSDD (datasets/README.md): a network trained on
 * 3-4 speakers learns their voices. Liftering keeps each frame's spectral envelope (formants: the word) and
 * drops the pitch harmonics (the voice); trimming and centring line the words up whatever the speaker's
 * pauses; random pitch/formant warps and tempo changes show the network more voices.
 * (Per-clip CMVN of each band, cnk_clip_norm, was worse there: a one-word clip's mean spectrum is largely
 * the word's vowel, so removing it removes the digit.) */
enum { SPEECH_MAX_RATE = 22050 };
/* The #ifndef lets datasets/experiments/speech_variant.sh build a screening binary with other values (-D...);
 * the library build never defines them. */
#ifndef SPEECH_TOP_DB
#define SPEECH_TOP_DB 40.0f       /* bins over 40 dB below the peak all read -40: each recording's noise floor
                                   * was the strongest cue to the speaker (+26 points on a validation speaker) */
#endif
#ifndef SPEECH_LIFTER
#define SPEECH_LIFTER 20          /* cepstral coefficients kept of 64 mel bands: the envelope, not the pitch */
#endif
#ifndef SPEECH_TRIM_DB
#define SPEECH_TRIM_DB 40.0f      /* silence around the word goes... */
#endif
enum { SPEECH_CENTER = 1 };       /* ...and the word sits in the middle of its segment */
#ifndef SPEECH_FREQ_WARP
#define SPEECH_FREQ_WARP 0.15f
#endif
#ifndef SPEECH_TIME_STRETCH
#define SPEECH_TIME_STRETCH 0.30f /* tempo +-30%: speakers' word lengths differ by up to 1.6x (session 11) */
#endif
#ifndef SPEECH_N_FFT
#define SPEECH_N_FFT 512          /* audio below 22050 Hz (speech among it): 64 ms at 8 kHz */
#endif
#ifndef SPEECH_HOP
#define SPEECH_HOP 128            /* 16 ms at 8 kHz */
#endif
#ifndef SPEECH_N_MELS
#define SPEECH_N_MELS 64
#endif

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
        p->n_fft = SPEECH_N_FFT, p->hop_length = SPEECH_HOP, p->n_mels = SPEECH_N_MELS;
    }
    p->n_scales = p->n_mels;
    double seconds = segment_seconds;
    if (seconds <= 0) {
        seconds = p50 >= 3.0 ? 3.0 : ceil(p95 * 4) / 4;
        if (seconds < 0.5) seconds = 0.5;
        if (seconds > 3.0) seconds = 3.0;
    }
    cnk_preprocess_set_segment_seconds(p, seconds);
    int speech = cnk_audio_params_is_speech(p);
    p->top_db = speech ? SPEECH_TOP_DB : 80;
    p->lifter = speech ? SPEECH_LIFTER : 0;
    p->trim_db = speech ? SPEECH_TRIM_DB : 0;
    p->center = speech ? SPEECH_CENTER : 0;
}

int cnk_audio_params_is_speech(const cnk_preprocess *p)
{
    int audio = cnk_prep_kind_is_audio(p->kind);
    double seconds = (double)(p->segment_frames - 1) * p->hop_length / (p->sample_rate > 0 ? p->sample_rate : 1);
    return audio && p->sample_rate < SPEECH_MAX_RATE && seconds < 3.0 - 1e-9;
}

void cnk_audio_params_augment(const cnk_preprocess *p, cnk_augment_params *aug)
{
    if (!cnk_audio_params_is_speech(p)) return;
    aug->freq_warp = SPEECH_FREQ_WARP;
    aug->time_stretch = SPEECH_TIME_STRETCH;
}

void cnk_audio_overrides_init(cnk_audio_overrides *o)
{
    *o = (cnk_audio_overrides){.top_db = -1, .trim_db = -1, .lifter = -1, .center = -1, .clip_norm = -1};
}

int cnk_audio_overrides_any(const cnk_audio_overrides *o)
{
    return o->top_db >= 0 || o->trim_db >= 0 || o->lifter >= 0 || o->center >= 0 || o->clip_norm >= 0;
}

void cnk_audio_overrides_apply(const cnk_audio_overrides *o, cnk_preprocess *p)
{
    if (o->top_db > 0) p->top_db = (float)o->top_db;
    if (o->trim_db >= 0) p->trim_db = (float)o->trim_db;
    if (o->lifter >= 0) p->lifter = o->lifter;
    if (o->center >= 0) p->center = o->center != 0;
    if (o->clip_norm >= 0 && o->clip_norm < CNK_CLIP_NORM_COUNT) p->clip_norm = o->clip_norm;
}
