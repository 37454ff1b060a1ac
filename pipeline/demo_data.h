/* demo_data.h: the built-in demo set: deterministic synthetic audio clips in a few classes that differ in
 * rhythm and timbre, written as WAV files in a class-per-subfolder tree so `cnnkit demo` needs no download. */
#ifndef CNK_DEMO_DATA_H
#define CNK_DEMO_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

typedef struct cnk_demo_params {
    int clips_per_class; /* default 40 */
    double seconds;      /* clip length, default 3.0 */
    int sample_rate;     /* default 22050 */
    uint64_t seed;       /* default 2024; every clip is a pure function of (seed, class, clip index) */
} cnk_demo_params;

void cnk_demo_default_params(cnk_demo_params *params);

/* The classes, in bytewise order of their names (which are the folder names). */
int cnk_demo_n_classes(void);
const char *cnk_demo_class_name(int class_index);

/* Samples per clip for params. */
size_t cnk_demo_clip_length(const cnk_demo_params *params);

/* Renders one clip (cnk_demo_clip_length samples, peak <= 0.95) into out. */
int cnk_demo_render(cnk_ctx *ctx, const cnk_demo_params *params, int class_index, int clip_index, float *out);

/* Writes every clip as dir/<class>/<class>_NNN.wav (16-bit PCM). The tree is built in a temporary folder
 * beside dir and renamed into place, so dir is either complete or absent. Fails if dir already exists. */
int cnk_demo_write(cnk_ctx *ctx, const char *dir, const cnk_demo_params *params);

#endif
