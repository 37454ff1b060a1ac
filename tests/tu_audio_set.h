/* tu_audio_set.h: the small generated audio set the training tests share (the built-in demo's classes as
 * 0.5 s clips at 8 kHz, 8 per class, 5 under the sanitizers) and the cmocka setup that writes it. For tests
 * that link pipeline/. */
#ifndef CNK_TU_AUDIO_SET_H
#define CNK_TU_AUDIO_SET_H

#include <stdio.h>

#include "pipeline/demo_data.h"
#include "testutil.h"

/* A fresh scratch folder tmp (tagged tag) with the set written into data = tmp/data; 0 on success. */
static inline int tu_write_audio_set(const char *tag, char *tmp, size_t tmp_cap, char *data, size_t data_cap)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    tu_tmpdir(tmp, tmp_cap, tag);
    snprintf(data, data_cap, "%s/data", tmp);
    cnk_demo_params dp;
    cnk_demo_default_params(&dp);
    dp.clips_per_class = tu_sanitized() ? 5 : 8;
    dp.seconds = 0.5;
    dp.sample_rate = 8000;
    return cnk_demo_write(&ctx, data, &dp) == CNK_OK ? 0 : -1;
}

#endif
