/* Tests for features/png and features/colormap: min..max -> 0..255, highest row on top, grey and RGB
 * colour maps that are matplotlib's (spot values), atomic writes, and bad sizes.
 * test-libs: core features */
#include "testutil.h"

#include <math.h>
#include <stb/stb_image.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "features/colormap.h"
#include "features/png.h"

static void test_grey_png_maps_range_and_flips_rows(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "png-grey");
    snprintf(path, sizeof path, "%s/spec.png", dir);
    /* 3 rows x 4 cols; row 0 (lowest frequency) is the darkest. */
    float data[12] = {-80, -80, -80, -80, -40, -40, -40, -40, 0, 0, 0, NAN};
    assert_int_equal(cnk_png_write_array(&ctx, path, data, 3, 4, CNK_COLORMAP_GREY), CNK_OK);
    int w, h, n;
    unsigned char *px = stbi_load(path, &w, &h, &n, 0);
    assert_non_null(px);
    assert_int_equal(w, 4);
    assert_int_equal(h, 3);
    assert_int_equal(n, 1);
    assert_int_equal(px[0], 255); /* top line = last row (0 dB = max) */
    assert_int_equal(px[3], 0);   /* NaN -> 0 */
    assert_int_equal(px[4], 128); /* -40 dB is halfway: 127.5 rounds to 128 */
    assert_int_equal(px[8], 0);   /* bottom line = row 0 (min) */
    stbi_image_free(px);
    /* A constant array is all zeros, not a division by zero. */
    float flat[4] = {3, 3, 3, 3};
    assert_int_equal(cnk_png_write_array(&ctx, path, flat, 2, 2, CNK_COLORMAP_GREY), CNK_OK);
    px = stbi_load(path, &w, &h, &n, 0);
    assert_non_null(px);
    for (int i = 0; i < 4; i++)
        assert_int_equal(px[i], 0);
    stbi_image_free(px);
    tu_rmtree(dir);
}

static void test_colormaps_are_matplotlibs(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    /* Reference values: matplotlib.colormaps[name](x)[:3] * 255, rounded (viridis from its published table). */
    unsigned char rgb[3];
    cnk_colormap_rgb(CNK_COLORMAP_VIRIDIS, 0, rgb);
    assert_true(rgb[0] == 68 && rgb[1] == 1 && rgb[2] == 84);
    cnk_colormap_rgb(CNK_COLORMAP_VIRIDIS, 255, rgb);
    assert_true(rgb[0] == 253 && rgb[1] == 231 && rgb[2] == 37);
    cnk_colormap_rgb(CNK_COLORMAP_VIRIDIS, 128, rgb);
    assert_true(rgb[0] == 33 && rgb[1] == 145 && rgb[2] == 140);
    cnk_colormap_rgb(CNK_COLORMAP_MAGMA, 0, rgb);
    assert_true(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 4);
    cnk_colormap_rgb(CNK_COLORMAP_MAGMA, 255, rgb);
    assert_true(rgb[0] == 252 && rgb[1] == 253 && rgb[2] == 191);
    cnk_colormap_rgb(CNK_COLORMAP_GREY, 77, rgb);
    assert_true(rgb[0] == 77 && rgb[1] == 77 && rgb[2] == 77);
    /* Viridis is perceptually ordered: its luminance rises monotonically. */
    double previous = -1;
    for (int i = 0; i < 256; i++) {
        cnk_colormap_rgb(CNK_COLORMAP_VIRIDIS, i, rgb);
        double luma = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
        assert_true(luma >= previous - 0.5);
        previous = luma;
    }
    cnk_colormap map;
    assert_int_equal(cnk_colormap_parse("magma", &map), 0);
    assert_int_equal(map, CNK_COLORMAP_MAGMA);
    assert_int_equal(cnk_colormap_parse("gray", &map), 0);
    assert_int_equal(map, CNK_COLORMAP_GREY);
    assert_int_equal(cnk_colormap_parse("jet", &map), -1);

    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "png-rgb");
    snprintf(path, sizeof path, "%s/viridis.png", dir);
    float data[2] = {0, 1}; /* 2 rows x 1 col */
    assert_int_equal(cnk_png_write_array(&ctx, path, data, 2, 1, CNK_COLORMAP_VIRIDIS), CNK_OK);
    int w, h, n;
    unsigned char *px = stbi_load(path, &w, &h, &n, 0);
    assert_non_null(px);
    assert_int_equal(n, 3);
    assert_int_equal(h, 2);
    assert_true(px[0] == 253 && px[1] == 231 && px[2] == 37); /* top = row 1 = max */
    assert_true(px[3] == 68 && px[4] == 1 && px[5] == 84);
    stbi_image_free(px);
    tu_rmtree(dir);
}

static void test_bad_sizes_and_paths_leave_nothing(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "png-bad");
    snprintf(path, sizeof path, "%s/x.png", dir);
    float one = 1;
    assert_int_equal(cnk_png_write_array(&ctx, path, &one, 0, 1, CNK_COLORMAP_GREY), CNK_ERR_ARG);
    assert_int_equal(cnk_png_write_array(&ctx, path, &one, 70000, 1, CNK_COLORMAP_GREY), CNK_ERR_ARG);
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    assert_int_equal(cnk_png_write_array(&ctx, path, &one, 1, 1, CNK_COLORMAP_GREY), CNK_ERR_IO);
    cnk_pathlist files;
    assert_int_equal(cnk_list_files(&ctx, dir, 1, &files), CNK_OK);
    assert_int_equal(files.count, 0);
    cnk_pathlist_release(&files);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grey_png_maps_range_and_flips_rows),
        cmocka_unit_test(test_colormaps_are_matplotlibs),
        cmocka_unit_test(test_bad_sizes_and_paths_leave_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
