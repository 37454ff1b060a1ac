/* tu_sets.h: the small data sets the training tests share: a generated audio set (the built-in demo's classes
 * as 0.5 s clips at 8 kHz, 8 per class, 5 under the sanitizers) and a few real photos linked from animals3.
 * For tests that link pipeline/. */
#ifndef CNK_TU_SETS_H
#define CNK_TU_SETS_H

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

/* A fresh scratch folder tmp (tagged tag) with photos = tmp/photos holding the first n (in name order) cats
 * and dogs of the shared animals3 folder, as links; 0 on success. */
static inline int tu_link_photos(const char *tag, int n, char *tmp, size_t tmp_cap, char *photos, size_t photos_cap)
{
    char src[4096];
    tu_tmpdir(tmp, tmp_cap, tag);
    snprintf(photos, photos_cap, "%s/photos", tmp);
    tu_shared(src, sizeof src, "datasets/animals3");
    const char *classes[2] = {"cats", "dogs"};
    for (int c = 0; c < 2; c++)
        if (tu_system("mkdir -p '%s/%s' && ls '%s/%s' | sort | head -%d | while read f; do ln -s '%s/%s/'\"$f\" "
                      "'%s/%s/'\"$f\"; done",
                      photos, classes[c], src, classes[c], n, src, classes[c], photos, classes[c]) != 0)
            return -1;
    return 0;
}

#endif
