/* Tests for pipeline/spec_warp: frequency warps and time stretches of spectrogram segments against
 * hand-computed linear interpolations, and identity at factor 1.
 * test-libs: core pipeline */
#include "testutil.h"

#include <string.h>

#include "pipeline/spec_warp.h"

static void test_warp_rows(void **state)
{
    (void)state;
    /* 5 rows x 2 frames: row r holds 10 r in frame 0 and -r in frame 1 */
    const float src[10] = {0, 0, 10, -1, 20, -2, 30, -3, 40, -4};
    float dst[10];
    cnk_spec_warp_rows(src, 5, 2, 1.0f, dst);
    assert_memory_equal(dst, src, sizeof dst);
    cnk_spec_warp_rows(src, 5, 2, 2.0f, dst); /* up an octave: row r shows row r/2 */
    const float up[10] = {0, 0, 5, -0.5f, 10, -1, 15, -1.5f, 20, -2};
    tu_assert_close(dst, up, 10, 1e-6, 0, "warp by 2");
    cnk_spec_warp_rows(src, 5, 2, 0.5f, dst); /* down: row r shows row 2r, the top row repeated past the top */
    const float down[10] = {0, 0, 20, -2, 40, -4, 40, -4, 40, -4};
    tu_assert_close(dst, down, 10, 1e-6, 0, "warp by 0.5");
    cnk_spec_warp_rows(src, 5, 2, 1.25f, dst); /* row 3 shows row 2.4 */
    assert_true(dst[6] > 24 - 1e-4f && dst[6] < 24 + 1e-4f && dst[7] > -2.4f - 1e-6f && dst[7] < -2.4f + 1e-6f);
}

static void test_stretch_frames(void **state)
{
    (void)state;
    /* 2 rows x 5 frames */
    const float src[10] = {0, 10, 20, 30, 40, 1, 1, 1, 1, 1};
    float dst[10];
    cnk_spec_stretch_frames(src, 2, 5, 1.0f, -9, dst);
    assert_memory_equal(dst, src, sizeof dst);
    cnk_spec_stretch_frames(src, 2, 5, 2.0f, -9, dst); /* twice as slow */
    const float slow[10] = {0, 5, 10, 15, 20, 1, 1, 1, 1, 1};
    tu_assert_close(dst, slow, 10, 1e-6, 0, "stretch by 2");
    cnk_spec_stretch_frames(src, 2, 5, 0.5f, -9, dst); /* twice as fast: the end is silence (fill) */
    const float fast[10] = {0, 20, 40, -9, -9, 1, 1, 1, -9, -9};
    tu_assert_close(dst, fast, 10, 1e-6, 0, "stretch by 0.5");
    cnk_spec_stretch_frames(src, 2, 5, 0.8f, -9, dst); /* frame t shows t / 0.8 */
    const float faster[10] = {0, 12.5f, 25, 37.5f, -9, 1, 1, 1, 1, -9};
    tu_assert_close(dst, faster, 10, 1e-5, 0, "stretch by 0.8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warp_rows),
        cmocka_unit_test(test_stretch_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
