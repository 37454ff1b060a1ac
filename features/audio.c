#include "features/audio.h"

#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"

void cnk_audio_release(cnk_audio *a)
{
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

int cnk_audio_is_audio_path(const char *path)
{
    static const char *const exts[] = {"wav", "au", "aiff", "aif", "flac", "ogg", "mp3"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (cnk_path_has_ext(path, exts[i])) return 1;
    return 0;
}

static int check_header(cnk_ctx *ctx, const char *path, const SF_INFO *info)
{
    if (info->channels < 1 || info->channels > CNK_AUDIO_MAX_CHANNELS)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: unsupported channel count %d (1..%d)", path, info->channels,
                        CNK_AUDIO_MAX_CHANNELS);
    if (info->samplerate < 1 || info->samplerate > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: absurd sample rate %d Hz", path, info->samplerate);
    if (info->frames <= 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: no audio frames (empty file)", path);
    if ((uint64_t)info->frames > CNK_AUDIO_MAX_SAMPLES / (uint64_t)info->channels)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: too long (%lld frames x %d channels exceeds %zu samples)", path,
                        (long long)info->frames, info->channels, CNK_AUDIO_MAX_SAMPLES);
    return CNK_OK;
}

/* libsndfile quietly shortens a file whose data chunk is cut off; its log still says so, as
 * "data : 1323588 (should be 99956)" (WAV, AIFF) or "Data Size : ... (should be ...)" (AU). A declared size
 * of 0 or 0xFFFFFFFF means "unknown" (streamed files) and is not a truncation. */
static int data_chunk_truncated(SNDFILE *sf, long long *declared, long long *present)
{
    char log[8192];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    for (char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        while (*line == ' ')
            line++;
        const char *rest = NULL;
        if (strncmp(line, "data :", 6) == 0 || strncmp(line, "SSND :", 6) == 0)
            rest = line + 6;
        else if (strncmp(line, "Data Size", 9) == 0) { /* libsndfile pads the AU label: "Data Size   :" */
            rest = line + 9;
            while (*rest == ' ')
                rest++;
            rest = *rest == ':' ? rest + 1 : NULL;
        }
        if (!rest) continue;
        long long n, m;
        if (sscanf(rest, " %lld (should be %lld)", &n, &m) == 2 && n > 0 && n != 0xFFFFFFFFLL && m < n - 8) {
            *declared = n;
            *present = m;
            return 1;
        }
    }
    return 0;
}

/* Frames decoded per read. Memory grows with the audio actually decoded, never with what a header promises:
 * a 45-byte FLAC header can claim half a billion frames. */
#define DECODE_CHUNK_FRAMES ((size_t)1 << 16)

/* Appends the channel means of got interleaved frames to *mono (holding *have of at most frames frames). */
static int append_mono(cnk_ctx *ctx, const char *path, const float *block, size_t got, size_t channels,
                       size_t frames, float **mono, size_t *have, size_t *cap)
{
    if (*have + got > *cap) {
        size_t new_cap = *cap ? *cap * 2 : DECODE_CHUNK_FRAMES;
        if (new_cap < *have + got) new_cap = *have + got;
        if (new_cap > frames) new_cap = frames;
        float *grown = realloc(*mono, new_cap * sizeof *grown);
        if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %zu samples", path, new_cap);
        *mono = grown;
        *cap = new_cap;
    }
    for (size_t i = 0; i < got; i++) {
        double sum = 0;
        for (size_t c = 0; c < channels; c++)
            sum += block[i * channels + c];
        float v = (float)(sum / (double)channels);
        if (!isfinite(v)) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: sample %zu is NaN or infinite", path, *have + i);
        (*mono)[*have + i] = v;
    }
    *have += got;
    return CNK_OK;
}

/* Reads every frame in chunks and averages the channels; a short read means the file is truncated. */
static int decode_mono(cnk_ctx *ctx, const char *path, SNDFILE *sf, const SF_INFO *info, float **mono)
{
    size_t frames = (size_t)info->frames, channels = (size_t)info->channels;
    float *block = malloc(DECODE_CHUNK_FRAMES * channels * sizeof *block);
    if (!block) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %zu channels", path, channels);
    float *buf = NULL;
    size_t have = 0, cap = 0;
    int rc = CNK_OK;
    while (rc == CNK_OK && have < frames) {
        size_t want = frames - have < DECODE_CHUNK_FRAMES ? frames - have : DECODE_CHUNK_FRAMES;
        sf_count_t got = sf_readf_float(sf, block, (sf_count_t)want);
        if (got <= 0) break;
        rc = append_mono(ctx, path, block, (size_t)got, channels, frames, &buf, &have, &cap);
        if ((size_t)got < want) break;
    }
    free(block);
    if (rc == CNK_OK && have != frames)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (header promises %zu frames, only %zu readable)", path, frames,
                      have);
    if (rc != CNK_OK) {
        free(buf);
        return rc;
    }
    *mono = buf;
    return CNK_OK;
}

int cnk_audio_load(cnk_ctx *ctx, const char *path, int target_sr, cnk_audio *out)
{
    memset(out, 0, sizeof *out);
    if (target_sr < 0 || target_sr > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: bad target sample rate %d", path, target_sr);
    if (cnk_is_dir(path)) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: is a directory, not an audio file", path);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: empty file (0 bytes)", path);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf) {
        if (!cnk_is_file(path)) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file or unreadable)", path);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a readable audio file (%s)", path, sf_strerror(NULL));
    }
    int rc = check_header(ctx, path, &info);
    long long declared, present;
    if (rc == CNK_OK && data_chunk_truncated(sf, &declared, &present))
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (header declares %lld data bytes, file holds %lld)", path,
                      declared, present);
    float *mono = NULL;
    if (rc == CNK_OK) rc = decode_mono(ctx, path, sf, &info, &mono);
    sf_close(sf);
    if (rc != CNK_OK) return rc;
    if (target_sr == 0 || target_sr == info.samplerate) {
        out->samples = mono;
        out->n_samples = (size_t)info.frames;
        out->sample_rate = info.samplerate;
        return CNK_OK;
    }
    float *resampled;
    size_t n_resampled;
    rc = cnk_audio_resample(ctx, mono, (size_t)info.frames, info.samplerate, target_sr, &resampled, &n_resampled);
    free(mono);
    if (rc != CNK_OK) { /* the resampler knows no file name: put it in front of its message */
        char why[sizeof ctx->message];
        snprintf(why, sizeof why, "%s", cnk_error(ctx));
        return cnk_fail(ctx, rc, "%s: %s", path, why);
    }
    if (n_resampled == 0) {
        free(resampled);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: too short to resample from %d to %d Hz", path, info.samplerate,
                        target_sr);
    }
    out->samples = resampled;
    out->n_samples = n_resampled;
    out->sample_rate = target_sr;
    return CNK_OK;
}

int cnk_audio_resample(cnk_ctx *ctx, const float *in, size_t n, int from_sr, int to_sr, float **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (from_sr < 1 || to_sr < 1 || from_sr > CNK_AUDIO_MAX_RATE || to_sr > CNK_AUDIO_MAX_RATE)
        return cnk_fail(ctx, CNK_ERR_ARG, "resample: bad rates %d -> %d Hz", from_sr, to_sr);
    double ratio = (double)to_sr / (double)from_sr;
    size_t want = (size_t)floor((double)n * ratio + 0.5);
    if (want > CNK_AUDIO_MAX_SAMPLES) return cnk_fail(ctx, CNK_ERR_NOMEM, "resample: %zu samples is too many", want);
    float *buf = malloc((want ? want : 1) * sizeof *buf);
    if (!buf) return cnk_fail(ctx, CNK_ERR_NOMEM, "resample: out of memory for %zu samples", want);
    if (from_sr == to_sr) {
        if (n) memcpy(buf, in, n * sizeof *buf);
    } else if (want > 0) {
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
        size_t used = 0, produced = 0;
        soxr_error_t err = soxr_oneshot(from_sr, to_sr, 1, in, n, &used, buf, want, &produced, &io, &quality, NULL);
        if (err) {
            free(buf);
            return cnk_fail(ctx, CNK_ERR_INTERNAL, "resample %d -> %d Hz: libsoxr: %s", from_sr, to_sr, err);
        }
        /* soxr may stop a sample short of the rounded length; the missing tail is silence. */
        for (size_t i = produced; i < want; i++)
            buf[i] = 0.0f;
    }
    *out = buf;
    *n_out = want;
    return CNK_OK;
}
