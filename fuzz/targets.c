/* targets.c: one function per loader under attack. Loaders that only take a path get the bytes through a
 * per-process memfd (/proc/self/fd/N), so no fuzz input ever touches the disk. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz/targets.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "core/context.h"
#include "core/npy.h"
#include "features/audio.h"
#include "features/image.h"
#include "features/spectrogram.h"
#include "features/wavelet.h"
#include "nn/arch.h"
#include "nn/cfg.h"
#include "nn/import.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/tflite.h"
#include "pipeline/csv.h"
#include "pipeline/idx.h"
#include "pipeline/preprocess.h"

#define MEM_NAME "fuzz-input"

/* A contract violation: say what it was (this is a test harness, not the library) and report -1. */
static int violation(const char *target, const char *what, const cnk_ctx *ctx)
{
    fprintf(stderr, "cnk_fuzz_%s: CONTRACT VIOLATION: %s (message: \"%s\")\n", target, what, ctx->message);
    return -1;
}

/* A failure must carry a known status other than INTERNAL and one line that names the input. */
static int check_status(const char *target, const cnk_ctx *ctx, int rc, const char *name)
{
    if (rc == CNK_OK) return CNK_OK;
    if (rc < CNK_ERR_ARG || rc > CNK_ERR_INTERNAL) return violation(target, "unknown status code", ctx);
    if (rc == CNK_ERR_INTERNAL) return violation(target, "internal error (a library bug)", ctx);
    if (ctx->message[0] == '\0') return violation(target, "failure without a message", ctx);
    if (strchr(ctx->message, '\n')) return violation(target, "message spans several lines", ctx);
    if (!strstr(ctx->message, name)) return violation(target, "message does not name the input", ctx);
    return rc;
}

static void fuzz_ctx(cnk_ctx *ctx)
{
    cnk_ctx_init(ctx);
    ctx->threads = 1;
}

/* The bytes as a file: one memfd per process, rewritten for every input. Fills path; 0 on success. */
static int as_file(const unsigned char *data, size_t size, char *path, size_t cap)
{
    static int fd = -1;
    if (fd < 0) fd = memfd_create("cnk-fuzz", 0);
    if (fd < 0 || ftruncate(fd, 0) != 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return 0;
}

/* A NUL-terminated copy for the text parsers. */
static char *as_text(const unsigned char *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return NULL;
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

int cnk_fuzz_audio(const unsigned char *data, size_t size)
{
    char path[64];
    if (as_file(data, size, path, sizeof path) != 0) return CNK_OK;
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_audio audio;
    int rc = check_status("audio", &ctx, cnk_audio_load(&ctx, path, 0, &audio), path);
    if (rc == CNK_OK) {
        if (audio.n_samples == 0 || !audio.samples) rc = violation("audio", "success with no samples", &ctx);
        else if (audio.sample_rate < 1 || audio.sample_rate > CNK_AUDIO_MAX_RATE)
            rc = violation("audio", "success with an absurd sample rate", &ctx);
        for (size_t i = 0; rc == CNK_OK && i < audio.n_samples; i++)
            if (!isfinite(audio.samples[i])) rc = violation("audio", "success with a non-finite sample", &ctx);
    }
    /* The CLI resamples to 22050 Hz by default: take short clips at ordinary rates through libsoxr too. */
    if (rc == CNK_OK && audio.n_samples <= ((size_t)1 << 15) && audio.sample_rate >= 4000 &&
        audio.sample_rate <= 96000 && audio.sample_rate != 22050) {
        cnk_audio resampled;
        rc = check_status("audio", &ctx, cnk_audio_load(&ctx, path, 22050, &resampled), path);
        if (rc == CNK_OK && (resampled.sample_rate != 22050 || resampled.n_samples == 0))
            rc = violation("audio", "resampled to the wrong rate or to nothing", &ctx);
        cnk_audio_release(&resampled);
    }
    cnk_audio_release(&audio);
    return rc;
}

/* One decode into a tensor; every value must lie in the normalisation's range. */
static int image_tensor(const char *path, int channels, int width, int height, cnk_crop_mode crop)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    size_t n = (size_t)channels * (size_t)width * (size_t)height;
    float *out = malloc(n * sizeof *out);
    if (!out) return CNK_OK;
    int rc = check_status("image", &ctx,
                          cnk_image_load_tensor(&ctx, path, channels, width, height, crop, CNK_NORM_SIGNED, out), path);
    for (size_t i = 0; rc == CNK_OK && i < n; i++)
        if (!(out[i] >= -1.0001f && out[i] <= 1.0001f)) rc = violation("image", "value outside [-1, 1]", &ctx);
    free(out);
    return rc;
}

/* Images above this many pixels only cost the fuzzer time (a 20-byte TGA header can promise 47 M pixels, which
 * stb fills with zeros): the harness checks they are refused cleanly under this budget, and runs the tensor
 * path, whose code is the same for every size, on the smaller ones. */
#define FUZZ_IMAGE_MAX_PIXELS ((size_t)1 << 20)

int cnk_fuzz_image(const unsigned char *data, size_t size)
{
    char path[64];
    if (as_file(data, size, path, sizeof path) != 0) return CNK_OK;
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_image img;
    int rc = check_status("image", &ctx, cnk_image_load_budget(&ctx, path, 3, FUZZ_IMAGE_MAX_PIXELS, &img), path);
    if (rc == CNK_OK && (img.width < 1 || img.height < 1 || !img.pixels || img.channels != 3))
        rc = violation("image", "success with an empty image", &ctx);
    cnk_image_release(&img);
    if (rc != CNK_OK) return rc;
    rc = image_tensor(path, 3, 16, 16, CNK_CROP_CENTER);
    if (rc < 0) return rc;
    int rc_grey = image_tensor(path, 1, 7, 5, CNK_CROP_NONE);
    return rc_grey < 0 ? rc_grey : rc;
}

int cnk_fuzz_csv(const unsigned char *data, size_t size)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_csv csv;
    int rc = check_status("csv", &ctx, cnk_csv_parse(&ctx, MEM_NAME, (const char *)data, size, &csv), MEM_NAME);
    if (rc == CNK_OK) {
        if (csv.n_cols == 0) rc = violation("csv", "success with no columns", &ctx);
        for (size_t c = 0; rc == CNK_OK && c < csv.n_cols; c++)
            if (!csv.header[c]) rc = violation("csv", "NULL header cell", &ctx);
        size_t last_line = csv.header_line;
        for (size_t r = 0; rc == CNK_OK && r < csv.n_rows; r++) {
            if (cnk_csv_line(&csv, r) <= last_line) rc = violation("csv", "row lines not increasing", &ctx);
            last_line = cnk_csv_line(&csv, r);
            for (size_t c = 0; rc == CNK_OK && c < csv.n_cols; c++) {
                double value;
                float fvalue;
                const char *cell = cnk_csv_cell(&csv, r, c);
                if (!cell) {
                    rc = violation("csv", "NULL cell", &ctx);
                    break;
                }
                const char *problem = cnk_csv_number_problem(cell, &value);
                if (!problem && !isfinite(value)) rc = violation("csv", "a non-finite number accepted", &ctx);
                int frc = cnk_csv_get_float(&ctx, &csv, r, c, &fvalue);
                if (rc == CNK_OK && check_status("csv", &ctx, frc, MEM_NAME) < 0) rc = -1;
                if (rc == CNK_OK && frc == CNK_OK && !isfinite(fvalue))
                    rc = violation("csv", "a non-finite float accepted", &ctx);
            }
        }
    }
    cnk_csv_release(&csv);
    return rc;
}

/* parse -> write -> parse -> write must reach a fixed point: the writer's text is what the parser reads. */
int cnk_fuzz_cfg(const unsigned char *data, size_t size)
{
    char *text = as_text(data, size);
    if (!text) return CNK_OK;
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_arch arch, again;
    char *written = NULL, *rewritten = NULL;
    int rc = check_status("cfg", &ctx, cnk_cfg_parse(&ctx, text, MEM_NAME, &arch), MEM_NAME);
    free(text);
    if (rc != CNK_OK) return rc;
    if (cnk_cfg_write(&ctx, &arch, &written) != CNK_OK) {
        rc = violation("cfg", "a parsed arch cannot be written", &ctx);
    } else if (cnk_cfg_parse(&ctx, written, "rewritten", &again) != CNK_OK) {
        fprintf(stderr, "--- written cfg ---\n%s---\n", written);
        rc = violation("cfg", "the writer's text does not parse", &ctx);
    } else {
        if (again.n_layers != arch.n_layers || again.n_params != arch.n_params || again.n_buffers != arch.n_buffers)
            rc = violation("cfg", "the round trip changed the network", &ctx);
        else if (cnk_cfg_write(&ctx, &again, &rewritten) != CNK_OK || strcmp(written, rewritten) != 0)
            rc = violation("cfg", "write(parse(write(x))) differs from write(x)", &ctx);
        cnk_arch_release(&again);
    }
    free(written);
    free(rewritten);
    cnk_arch_release(&arch);
    return rc;
}

/* Runs one forward pass of a model small enough for a fuzzer (a few MB of activations). */
static int run_small_model(const cnk_modelfile *mf, const cnk_arch *arch)
{
    size_t activations = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        const cnk_shape *s = &arch->layers[i].out;
        activations += (size_t)s->c * (size_t)s->h * (size_t)s->w;
    }
    if (activations > ((size_t)1 << 20) || arch->flops > 5e7) return CNK_OK;
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_model *model = NULL;
    if (cnk_model_create(&ctx, arch, 1, &model) != CNK_OK) return check_status("modelfile", &ctx, ctx.status, "");
    memcpy(cnk_model_params(model), mf->params, mf->n_params * sizeof(float));
    if (mf->n_buffers) memcpy(cnk_model_buffers(model), mf->buffers, mf->n_buffers * sizeof(float));
    float *inputs_mem[CNK_MAX_OUTPUTS] = {0};
    const float *inputs[CNK_MAX_OUTPUTS] = {0};
    int rc = CNK_OK;
    for (int i = 0; i < arch->n_input_layers; i++) {
        const cnk_shape *s = &arch->layers[arch->input_layers[i]].input_shape;
        inputs_mem[i] = calloc((size_t)s->c * (size_t)s->h * (size_t)s->w, sizeof(float));
        inputs[i] = inputs_mem[i];
        if (!inputs_mem[i]) rc = CNK_ERR_NOMEM;
    }
    if (rc == CNK_OK && cnk_model_forward(&ctx, model, inputs, 1, CNK_MODE_INFER) != CNK_OK)
        rc = violation("modelfile", "forward failed on a model that loaded", &ctx);
    for (int i = 0; i < arch->n_input_layers; i++) free(inputs_mem[i]);
    cnk_model_free(model);
    return rc;
}

/* A copy of a .cnk image with every checksum recomputed (header, then each section as far as the lengths
 * allow), so mutations reach the parser behind the CRC checks instead of dying at the first one. */
static unsigned char *fix_checksums(const unsigned char *data, size_t size)
{
    if (size < 20 || memcmp(data, "CNKMODEL", 8) != 0) return NULL;
    unsigned char *fixed = malloc(size);
    if (!fixed) return NULL;
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32(0L, fixed, 16);
    memcpy(fixed + 16, &crc, 4);
    size_t pos = 20;
    while (size - pos >= 16) {
        uint64_t len;
        memcpy(&len, fixed + pos + 4, 8);
        if (len > size - pos - 16) break;
        crc = (uint32_t)crc32(0L, fixed + pos, (uInt)(12 + len));
        memcpy(fixed + pos + 12 + len, &crc, 4);
        pos += 16 + (size_t)len;
    }
    return fixed;
}

static int modelfile_once(const unsigned char *data, size_t size);

int cnk_fuzz_modelfile(const unsigned char *data, size_t size)
{
    int rc = modelfile_once(data, size);
    unsigned char *fixed = rc < 0 ? NULL : fix_checksums(data, size);
    if (fixed && memcmp(fixed, data, size) != 0) {
        int fixed_rc = modelfile_once(fixed, size);
        if (fixed_rc < 0) rc = fixed_rc;
    }
    free(fixed);
    return rc;
}

static int modelfile_once(const unsigned char *data, size_t size)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_modelfile mf;
    int rc = check_status("modelfile", &ctx, cnk_modelfile_read_mem(&ctx, MEM_NAME, data, size, &mf), MEM_NAME);
    if (rc != CNK_OK) {
        if (mf.arch_text || mf.class_names || mf.params || mf.buffers || mf.preprocess)
            rc = violation("modelfile", "failure left fields allocated", &ctx);
        cnk_modelfile_release(&mf);
        return rc;
    }
    /* The preprocessing text predict reads back (a pipeline format inside the model file). */
    int prep_rc = CNK_OK;
    if (mf.preprocess && mf.preprocess[0]) {
        cnk_preprocess prep;
        prep_rc = check_status("modelfile", &ctx, cnk_preprocess_from_text(&ctx, mf.preprocess, MEM_NAME, &prep),
                               MEM_NAME);
        if (prep_rc < 0) {
            cnk_modelfile_release(&mf);
            return prep_rc;
        }
    }
    cnk_arch arch;
    if (cnk_modelfile_arch(&ctx, &mf, &arch) != CNK_OK) {
        rc = violation("modelfile", "a file that loaded has an arch that does not parse", &ctx);
    } else {
        if (arch.n_params != mf.n_params || arch.n_buffers != mf.n_buffers)
            rc = violation("modelfile", "parameter counts differ from the arch", &ctx);
        else
            rc = run_small_model(&mf, &arch);
        cnk_arch_release(&arch);
    }
    cnk_modelfile_release(&mf);
    return rc == CNK_OK ? prep_rc : rc; /* a model whose preprocessing does not parse cannot predict */
}

int cnk_fuzz_tflite(const unsigned char *data, size_t size)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_tfl_graph graph;
    int rc = check_status("tflite", &ctx, cnk_tflite_parse(&ctx, MEM_NAME, data, size, &graph), MEM_NAME);
    if (rc != CNK_OK) return rc;
    for (int t = 0; rc == CNK_OK && t < graph.n_tensors; t++) {
        const cnk_tfl_tensor *tensor = &graph.tensors[t];
        if (!tensor->name || tensor->ndim < 0 || tensor->ndim > CNK_TFL_MAX_DIMS)
            rc = violation("tflite", "tensor without a name or with a bad rank", &ctx);
        for (size_t i = 0; rc == CNK_OK && tensor->data && i < tensor->count; i++)
            if (isnan(tensor->data[i]) && tensor->type != CNK_TFL_FLOAT32 && tensor->type != CNK_TFL_FLOAT16)
                rc = violation("tflite", "NaN dequantised from an integer tensor", &ctx);
    }
    for (int o = 0; rc == CNK_OK && o < graph.n_ops; o++) {
        const cnk_tfl_op *op = &graph.ops[o];
        for (int i = 0; i < op->n_inputs && rc == CNK_OK; i++)
            if (op->inputs[i] < -1 || op->inputs[i] >= graph.n_tensors)
                rc = violation("tflite", "op input index outside the tensors", &ctx);
        for (int i = 0; i < op->n_outputs && rc == CNK_OK; i++)
            if (op->outputs[i] < 0 || op->outputs[i] >= graph.n_tensors)
                rc = violation("tflite", "op output index outside the tensors", &ctx);
    }
    if (rc == CNK_OK) {
        int ops_rc = cnk_tflite_check_ops(&ctx, MEM_NAME, &graph, 0, graph.n_ops);
        rc = check_status("tflite", &ctx, ops_rc, MEM_NAME) < 0 ? -1 : CNK_OK;
    }
    if (rc == CNK_OK) {
        cnk_arch arch;
        float *params = NULL;
        cnk_import_info info;
        int import_rc = cnk_import_graph(&ctx, MEM_NAME, &graph, &arch, &params, &info);
        if (check_status("tflite", &ctx, import_rc, MEM_NAME) < 0) rc = -1;
        if (import_rc == CNK_OK) cnk_arch_release(&arch);
        free(params);
    }
    cnk_tflite_release(&graph);
    return rc;
}

int cnk_fuzz_npy(const unsigned char *data, size_t size)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_array array;
    memset(&array, 0, sizeof array);
    int rc = check_status("npy", &ctx, cnk_npy_parse(&ctx, MEM_NAME, data, size, &array), MEM_NAME);
    if (rc == CNK_OK) {
        if (array.ndim < 0 || array.ndim > CNK_NPY_MAX_DIMS) rc = violation("npy", "bad rank", &ctx);
        else if (cnk_array_count(&array) * sizeof(float) > size) rc = violation("npy", "more data than bytes", &ctx);
        /* Touch every value so ASan sees an undersized buffer. */
        volatile float sink = 0;
        for (size_t i = 0; rc == CNK_OK && i < cnk_array_count(&array); i++) sink += array.data[i];
        (void)sink;
    }
    cnk_array_release(&array);
    return rc;
}

int cnk_fuzz_idx(const unsigned char *data, size_t size)
{
    char path[64];
    if (as_file(data, size, path, sizeof path) != 0) return CNK_OK;
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_idx_reader reader;
    int rc = check_status("idx", &ctx, cnk_idx_open(&ctx, path, &reader), path);
    if (rc != CNK_OK) return rc;
    /* Read record by record (as the dataset loader does) until the end or the first error. */
    size_t values = reader.record_values;
    float *floats = values <= ((size_t)1 << 20) ? malloc(values * sizeof *floats) : NULL;
    unsigned char *bytes = values <= ((size_t)1 << 20) ? malloc(values) : NULL;
    int as_bytes = reader.type == CNK_IDX_U8 || reader.type == CNK_IDX_I8;
    for (size_t r = 0; floats && bytes && r < reader.n_records && r < 4096; r++) {
        int read_rc = (as_bytes && (r & 1)) ? cnk_idx_read_bytes(&ctx, &reader, 1, bytes)
                                            : cnk_idx_read_floats(&ctx, &reader, 1, floats);
        if (read_rc != CNK_OK) {
            rc = check_status("idx", &ctx, read_rc, path);
            break;
        }
    }
    free(floats);
    free(bytes);
    cnk_idx_close(&reader);
    return rc;
}

/* ---- spectrogram / wavelet parameters and clips: a 16-byte parameter header, then int16 samples ------------ */

static unsigned get_u16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* Output of rows x frames floats must be finite; 1 M values at most so the fuzzer stays fast. */
static int check_plane(const char *what, const cnk_ctx *ctx, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(out[i])) return violation("spectrogram", what, ctx);
    return CNK_OK;
}

static int fuzz_stft_mel(const unsigned char *h, const float *samples, size_t n)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_spec_params p;
    cnk_spec_params_default(&p, (int)get_u16(h + 1));
    p.kind = (h[0] & 1) ? CNK_SPEC_MEL : CNK_SPEC_STFT;
    p.center = (h[0] >> 1) & 1;
    p.pad_mode = (h[0] >> 2) & 1 ? CNK_PAD_REFLECT : CNK_PAD_CONSTANT;
    p.power = (h[0] >> 3) & 1 ? 1 : 2;
    p.mel_scale = (h[0] >> 4) & 1 ? CNK_MEL_SCALE_HTK : CNK_MEL_SCALE_SLANEY;
    p.mel_norm = (h[0] >> 5) & 1 ? CNK_MEL_NORM_NONE : CNK_MEL_NORM_SLANEY;
    p.mel_interp = (h[0] >> 6) & 1 ? CNK_MEL_TRIANGLE_MEL : CNK_MEL_TRIANGLE_HZ;
    p.frame_layout = (h[0] >> 7) & 1 ? CNK_FRAME_TF : CNK_FRAME_LIBROSA;
    p.n_fft = (int)(get_u16(h + 3) & 0x7FF);
    p.win_length = (int)(get_u16(h + 5) & 0x7FF);
    p.hop_length = (int)(get_u16(h + 7) & 0x7FF);
    p.n_mels = h[9];
    p.fmin = h[10] * 50.0;
    p.fmax = (signed char)h[11] * 200.0;
    cnk_spec *spec = NULL;
    int rc = check_status("spectrogram", &ctx, cnk_spec_create(&ctx, &p, &spec), "");
    if (rc != CNK_OK) return rc;
    size_t rows = cnk_spec_n_rows(spec), frames = cnk_spec_n_frames(spec, n);
    if (rows && frames && rows * frames <= ((size_t)1 << 20)) {
        float *out = malloc(rows * frames * sizeof *out);
        if (out && cnk_spec_compute(spec, samples, n, out) == CNK_OK) {
            rc = check_plane("non-finite spectrogram value", &ctx, out, rows * frames);
            cnk_power_to_db(out, rows * frames, 1.0f, 1e-10f, 80.0f);
            if (rc == CNK_OK) rc = check_plane("non-finite dB value", &ctx, out, rows * frames);
        } else if (out) {
            rc = violation("spectrogram", "compute failed on a clip with frames", &ctx);
        }
        free(out);
    }
    cnk_spec_free(spec);
    return rc;
}

static int fuzz_wavelet(const unsigned char *h, const float *samples, size_t n)
{
    cnk_ctx ctx;
    fuzz_ctx(&ctx);
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, (int)get_u16(h + 1));
    p.n_scales = h[12] & 0x7F;
    p.fmin = h[10] * 10.0;
    p.fmax = (signed char)h[11] * 200.0;
    p.omega0 = 1.0 + (h[13] & 0x0F);
    p.hop_length = (int)(get_u16(h + 7) & 0x7FF);
    p.n_fft = (int)(get_u16(h + 3) & 0x7FF);
    p.center = (h[0] >> 1) & 1;
    cnk_wavelet *w = NULL;
    int rc = check_status("spectrogram", &ctx, cnk_wavelet_create(&ctx, &p, &w), "");
    if (rc != CNK_OK) return rc;
    size_t rows = cnk_wavelet_n_rows(w), frames = cnk_wavelet_n_frames(w, n);
    if (rows && frames && rows * frames <= ((size_t)1 << 18)) {
        float *out = malloc(rows * frames * sizeof *out);
        if (out) {
            int crc = check_status("spectrogram", &ctx, cnk_wavelet_compute(&ctx, w, samples, n, out), "");
            if (crc < 0) rc = crc;
            else if (crc == CNK_OK) rc = check_plane("non-finite wavelet power", &ctx, out, rows * frames);
        }
        free(out);
    }
    cnk_wavelet_free(w);
    return rc;
}

int cnk_fuzz_spectrogram(const unsigned char *data, size_t size)
{
    if (size < 16) return CNK_OK;
    size_t n = (size - 16) / 2;
    float *samples = malloc((n ? n : 1) * sizeof *samples);
    if (!samples) return CNK_OK;
    for (size_t i = 0; i < n; i++) samples[i] = (float)(int16_t)get_u16(data + 16 + 2 * i) / 32768.0f;
    int rc = (data[14] & 1) ? fuzz_wavelet(data, samples, n) : fuzz_stft_mel(data, samples, n);
    free(samples);
    return rc;
}

const cnk_fuzz_target cnk_fuzz_targets[] = {
    {"audio", cnk_fuzz_audio},         {"image", cnk_fuzz_image}, {"csv", cnk_fuzz_csv},
    {"cfg", cnk_fuzz_cfg},             {"modelfile", cnk_fuzz_modelfile},
    {"tflite", cnk_fuzz_tflite},       {"npy", cnk_fuzz_npy},     {"idx", cnk_fuzz_idx},
    {"spectrogram", cnk_fuzz_spectrogram},
};
const int cnk_fuzz_n_targets = (int)(sizeof cnk_fuzz_targets / sizeof cnk_fuzz_targets[0]);

const cnk_fuzz_target *cnk_fuzz_find(const char *name)
{
    for (int i = 0; i < cnk_fuzz_n_targets; i++)
        if (strcmp(cnk_fuzz_targets[i].name, name) == 0) return &cnk_fuzz_targets[i];
    return NULL;
}
