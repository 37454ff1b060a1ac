/* targets.h: the fuzz entry points shared by the libFuzzer harnesses (fuzz/fuzz_<target>.c) and the replay
 * test (tests/test_fuzz_regressions.c): bytes in, one loader run on them, everything released, contract checked. */
#ifndef CNK_FUZZ_TARGETS_H
#define CNK_FUZZ_TARGETS_H

#include <stddef.h>

/* Each returns the loader's status (CNK_OK or a CNK_ERR_*), or -1 when the library broke its contract on this
 * input: a failure without a one-line message naming the input, an unknown status, or a success whose result
 * is inconsistent. The harnesses turn -1 into a crash so libFuzzer keeps the input. */
typedef int (*cnk_fuzz_fn)(const unsigned char *data, size_t size);

int cnk_fuzz_audio(const unsigned char *data, size_t size);     /* features/audio.h  cnk_audio_load */
int cnk_fuzz_image(const unsigned char *data, size_t size);     /* features/image.h  cnk_image_load_tensor */
int cnk_fuzz_csv(const unsigned char *data, size_t size);       /* pipeline/csv.h    cnk_csv_parse + numbers */
int cnk_fuzz_cfg(const unsigned char *data, size_t size);       /* nn/cfg.h          parse, write, re-parse */
int cnk_fuzz_modelfile(const unsigned char *data, size_t size); /* nn/modelfile.h    read_mem + arch + model */
int cnk_fuzz_tflite(const unsigned char *data, size_t size);    /* nn/tflite.h       parse + import mapping */
int cnk_fuzz_npy(const unsigned char *data, size_t size);       /* core/npy.h        cnk_npy_parse */
int cnk_fuzz_idx(const unsigned char *data, size_t size);       /* pipeline/idx.h    open + read all records */
/* features/spectrogram.h, wavelet.h: 16 bytes of plan parameters (n_fft, hop, mels, fmin/fmax, padding...),
 * then int16 samples: create the plan, compute, dB. */
int cnk_fuzz_spectrogram(const unsigned char *data, size_t size);

typedef struct cnk_fuzz_target {
    const char *name; /* fuzz/corpus/<name>/, fuzz/crashers/<name>/, build-fuzz/fuzz_<name> */
    cnk_fuzz_fn run;
} cnk_fuzz_target;

extern const cnk_fuzz_target cnk_fuzz_targets[];
extern const int cnk_fuzz_n_targets;

/* The target called name, or NULL. */
const cnk_fuzz_target *cnk_fuzz_find(const char *name);

#endif
