/* Tests for features/image: real JPEGs (animals3) and BMPs (ImageNet test photos) decode, grey/RGBA
 * conversion, the pixel budget, crop/resize shapes, parity of the bilinear (triangle) resize with torch's
 * antialiased bilinear, and the three normalisations.
 * test-libs: core features */
#include "testutil.h"

#include <math.h>
#include <stb/stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "features/image.h"

static void test_loads_animals_jpegs_and_bmps(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    static const char *const files[] = {"datasets/animals3/cats/cats_00010.jpg",
                                        "datasets/animals3/dogs/dogs_00003.jpg",
                                        "datasets/animals3/panda/panda_00003.jpg"};
    for (int i = 0; i < 3; i++) {
        cnk_image img;
        tu_shared(path, sizeof path, files[i]);
        if (cnk_image_load(&ctx, path, 3, &img) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
        assert_true(img.width >= 100 && img.height >= 100);
        assert_int_equal(img.channels, 3);
        cnk_image_release(&img);
    }
    cnk_image img;
    assert_int_equal(
        cnk_image_load(&ctx, tu_shared(path, sizeof path, "weights/imagenet-test-photos/cat.bmp"), 3, &img), CNK_OK);
    assert_int_equal(img.width, 512);
    assert_int_equal(img.height, 341);
    /* Pixels read independently (numpy BMP parser in gen_features.py). */
    cnk_array px;
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, "features/image_cat_pixels.npy"), &px), CNK_OK);
    for (size_t k = 0; k < px.shape[0]; k++) {
        const float *row = px.data + k * 5;
        const unsigned char *p = img.pixels + ((size_t)row[0] * 512 + (size_t)row[1]) * 3;
        for (int c = 0; c < 3; c++)
            assert_int_equal(p[c], (int)row[2 + c]);
    }
    cnk_array_release(&px);
    /* Grey is stb's luma of the same pixels. */
    cnk_image grey;
    tu_shared(path, sizeof path, "weights/imagenet-test-photos/cat.bmp");
    assert_int_equal(cnk_image_load(&ctx, path, 1, &grey), CNK_OK);
    assert_int_equal(grey.channels, 1);
    for (size_t i = 0; i < (size_t)512 * 341; i += 997) {
        const unsigned char *p = img.pixels + i * 3;
        assert_int_equal(grey.pixels[i], (p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);
    }
    cnk_image_release(&grey);
    cnk_image_release(&img);
}

static void test_rgba_and_grey_png_conversion(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "image-rgba");
    snprintf(path, sizeof path, "%s/rgba.png", dir);
    unsigned char rgba[2 * 2 * 4] = {255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 128, 10, 20, 30, 40};
    assert_true(stbi_write_png(path, 2, 2, 4, rgba, 8));
    cnk_image img;
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_OK);
    assert_int_equal(img.channels, 3);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(img.pixels[i * 3 + c], rgba[i * 4 + c]); /* alpha dropped */
    cnk_image_release(&img);
    snprintf(path, sizeof path, "%s/grey.png", dir);
    unsigned char g[3] = {0, 128, 255};
    assert_true(stbi_write_png(path, 3, 1, 1, g, 3));
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_OK);
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(img.pixels[i * 3 + c], g[i]); /* grey replicated */
    cnk_image_release(&img);
    tu_rmtree(dir);
}

static void test_pixel_budget_and_bad_files(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "image-bad");
    /* A PGM header claiming 60000 x 60000 pixels and no data: refused from the header alone. */
    snprintf(path, sizeof path, "%s/huge.pgm", dir);
    FILE *f = fopen(path, "w");
    fputs("P5\n60000 60000\n255\n", f);
    fclose(f);
    cnk_image img;
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "budget"));
    assert_non_null(strstr(cnk_error(&ctx), path));
    /* A real photo over a small budget. */
    char photo[4096];
    tu_shared(photo, sizeof photo, "weights/imagenet-test-photos/cat.bmp");
    assert_int_equal(cnk_image_load_budget(&ctx, photo, 3, 1000, &img), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "512 x 341"));
    snprintf(path, sizeof path, "%s/text.jpg", dir);
    f = fopen(path, "w");
    fputs("not an image", f);
    fclose(f);
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), path));
    /* A JPEG cut short decodes or fails cleanly, never crashes. */
    snprintf(path, sizeof path, "%s/cut.jpg", dir);
    tu_shared(photo, sizeof photo, "datasets/animals3/cats/cats_00010.jpg");
    tu_system("head -c 300 '%s' > '%s'", photo, path);
    if (cnk_image_load(&ctx, path, 3, &img) == CNK_OK) cnk_image_release(&img);
    snprintf(path, sizeof path, "%s/missing.png", dir);
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_ERR_IO);
    assert_int_equal(cnk_image_load(&ctx, dir, 3, &img), CNK_ERR_INPUT);
    tu_rmtree(dir);
}

static void test_crop_and_resize_shapes(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_image img, sq, small, wide;
    tu_shared(path, sizeof path, "weights/imagenet-test-photos/cat.bmp");
    assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_OK);
    assert_int_equal(cnk_image_center_crop(&ctx, &img, 1, 1, &sq), CNK_OK);
    assert_int_equal(sq.width, 341);
    assert_int_equal(sq.height, 341);
    /* The crop is the centre: its first pixel is the source's pixel (85, 0). */
    assert_memory_equal(sq.pixels, img.pixels + 85 * 3, 3);
    assert_int_equal(cnk_image_resize(&ctx, &sq, 224, 224, &small), CNK_OK);
    assert_int_equal(small.width, 224);
    assert_int_equal(small.height, 224);
    assert_int_equal(cnk_image_center_crop(&ctx, &img, 16, 9, &wide), CNK_OK);
    assert_int_equal(wide.width, 512);
    assert_int_equal(wide.height, 288);
    /* 2000 -> 1304 makes Debian's stb_image_resize abort (nothings/stb#1449); ours must just work. */
    cnk_image strip = {.width = 2000, .height = 3, .channels = 1}, narrow;
    strip.pixels = malloc(2000 * 3);
    assert_non_null(strip.pixels);
    for (int i = 0; i < 6000; i++)
        strip.pixels[i] = (unsigned char)lrint((i % 2000) * 255.0 / 1999);
    assert_int_equal(cnk_image_resize(&ctx, &strip, 1304, 3, &narrow), CNK_OK);
    /* A linear ramp stays the same ramp, sampled at the output pixel centres (away from the clamped edges). */
    for (int x = 2; x < 1302; x++) {
        double source_x = (x + 0.5) * 2000.0 / 1304 - 0.5;
        assert_true(fabs(narrow.pixels[1304 + x] - source_x * 255.0 / 1999) <= 1.0);
    }
    cnk_image_release(&narrow);
    cnk_image_release(&strip);
    cnk_image bad;
    assert_int_equal(cnk_image_crop(&ctx, &img, 500, 0, 100, 10, &bad), CNK_ERR_ARG);
    assert_int_equal(cnk_image_resize(&ctx, &img, 0, 10, &bad), CNK_ERR_ARG);
    cnk_image_release(&wide);
    cnk_image_release(&small);
    cnk_image_release(&sq);
    cnk_image_release(&img);
}

static void test_tensor_matches_torch_antialiased_bilinear(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_array ref;
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, "features/image_cat_crop_64_rgb.npy"), &ref),
                     CNK_OK);
    float *unit = malloc(3 * 64 * 64 * sizeof *unit);
    assert_non_null(unit);
    tu_shared(path, sizeof path, "weights/imagenet-test-photos/cat.bmp");
    assert_int_equal(cnk_image_load_tensor(&ctx, path, 3, 64, 64, CNK_CROP_CENTER, CNK_NORM_UNIT, unit), CNK_OK);
    double sum_abs = 0, worst = 0;
    for (size_t i = 0; i < 3 * 64 * 64; i++) {
        double d = fabs(unit[i] * 255.0 - ref.data[i]);
        sum_abs += d;
        worst = fmax(worst, d);
    }
    print_message("triangle resize vs torch bilinear antialias (341 -> 64): mean |diff| %.3f, max %.2f levels\n",
                  sum_abs / (3 * 64 * 64), worst);
    /* The same filter as torch: only float rounding differs. */
    assert_true(sum_abs / (3 * 64 * 64) < 1e-3);
    assert_true(worst < 1e-2);
    cnk_array_release(&ref);
    free(unit);
}

static void test_normalisations(void **state)
{
    (void)state;
    cnk_image img = {.width = 2, .height = 1, .channels = 3};
    unsigned char px[6] = {0, 255, 128, 255, 0, 51};
    img.pixels = px;
    float out[6];
    cnk_image_to_chw(&img, CNK_NORM_UNIT, out);
    /* CHW: R plane (0, 255), G plane (255, 0), B plane (128, 51). */
    assert_float_equal(out[0], 0.0f, 1e-7);
    assert_float_equal(out[1], 1.0f, 1e-7);
    assert_float_equal(out[2], 1.0f, 1e-7);
    assert_float_equal(out[5], 0.2f, 1e-7);
    cnk_image_to_chw(&img, CNK_NORM_SIGNED, out);
    assert_float_equal(out[0], -1.0f, 1e-7);
    assert_float_equal(out[1], 1.0f, 1e-7);
    assert_float_equal(out[4], 128 / 127.5f - 1, 1e-7);
    cnk_image_to_chw(&img, CNK_NORM_IMAGENET, out);
    assert_float_equal(out[0], (0 - 0.485f) / 0.229f, 1e-6);
    assert_float_equal(out[2], (1 - 0.456f) / 0.224f, 1e-6);
    assert_float_equal(out[5], (0.2f - 0.406f) / 0.225f, 1e-6);
    /* The full path on a real photo: a centred 224x224 MobileNet input stays in [-1, 1]. */
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    float *t = malloc(3 * 224 * 224 * sizeof *t);
    assert_non_null(t);
    tu_shared(path, sizeof path, "weights/imagenet-test-photos/parrot.jpg");
    assert_int_equal(cnk_image_load_tensor(&ctx, path, 3, 224, 224, CNK_CROP_CENTER, CNK_NORM_SIGNED, t), CNK_OK);
    float lo = 1e9f, hi = -1e9f;
    for (size_t i = 0; i < 3 * 224 * 224; i++)
        lo = fminf(lo, t[i]), hi = fmaxf(hi, t[i]);
    assert_true(lo >= -1.0f - 1e-6f && hi <= 1.0f + 1e-6f && hi - lo > 1.0f);
    free(t);
    assert_true(cnk_image_is_image_path("a/b.JPG"));
    assert_false(cnk_image_is_image_path("a/b.wav"));
}

/* Writes a w x h RGB gradient with stb_image_write in the given format ("tga", "tga-rle" or "bmp"). */
static void write_gradient(const char *path, const char *format, int w, int h)
{
    unsigned char *px = malloc((size_t)w * h * 3);
    assert_non_null(px);
    for (int i = 0; i < w * h * 3; i++) px[i] = (unsigned char)(i * 7 % 251);
    if (strcmp(format, "bmp") == 0) {
        assert_true(stbi_write_bmp(path, w, h, 3, px));
    } else {
        stbi_write_tga_with_rle = strcmp(format, "tga-rle") == 0;
        assert_true(stbi_write_tga(path, w, h, 3, px));
    }
    free(px);
}

/* stb_image fills missing BMP/TGA pixel data with zeros; the loader must refuse such files (a 22-byte fuzz input
 * otherwise decoded as 47 megapixels), while intact files and their exact pixels still load. */
static void test_truncated_bmp_and_tga_are_refused(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200], cut[4200];
    tu_tmpdir(dir, sizeof dir, "image-trunc");
    const char *formats[] = {"tga", "tga-rle", "bmp"};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/whole-%s.%s", dir, formats[f], f < 2 ? "tga" : "bmp");
        write_gradient(path, formats[f], 37, 23);
        cnk_image img;
        assert_int_equal(cnk_image_load(&ctx, path, 3, &img), CNK_OK);
        assert_int_equal(img.width, 37);
        assert_int_equal(img.height, 23);
        assert_int_equal(img.pixels[3 * 37 * 23 - 1], (3 * 37 * 23 - 1) * 7 % 251);
        cnk_image_release(&img);
        snprintf(cut, sizeof cut, "%s/cut-%s.%s", dir, formats[f], f < 2 ? "tga" : "bmp");
        tu_system("head -c 60 '%s' > '%s'", path, cut);
        assert_int_equal(cnk_image_load(&ctx, cut, 3, &img), CNK_ERR_INPUT);
        assert_non_null(strstr(cnk_error(&ctx), "truncated"));
        assert_non_null(strstr(cnk_error(&ctx), cut));
    }
    /* the fuzz input itself: an 18-byte TGA header promising 8243 x 5682 pixels, 4 bytes of data */
    char crasher[4200];
    const char *source = getenv("CNK_SOURCE_DIR");
    snprintf(crasher, sizeof crasher, "%s/fuzz/crashers/image/timeout-tga-22-bytes-47mpx.tga",
             source && *source ? source : "..");
    cnk_image img;
    assert_int_equal(cnk_image_load(&ctx, crasher, 3, &img), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "8243 x 5682"));
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_animals_jpegs_and_bmps),
        cmocka_unit_test(test_rgba_and_grey_png_conversion),
        cmocka_unit_test(test_pixel_budget_and_bad_files),
        cmocka_unit_test(test_truncated_bmp_and_tga_are_refused),
        cmocka_unit_test(test_crop_and_resize_shapes),
        cmocka_unit_test(test_tensor_matches_torch_antialiased_bilinear),
        cmocka_unit_test(test_normalisations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
