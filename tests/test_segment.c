/* Tests for pipeline/segment: segment counts, padding of short clips and last windows, 2-D copies.
 * test-libs: pipeline */
#include "testutil.h"

#include <string.h>

#include "pipeline/segment.h"

static void test_counts(void **state)
{
    (void)state;
    assert_int_equal(cnk_segment_count(5, 10, 10, 0), 1);   /* short clip: one padded segment */
    assert_int_equal(cnk_segment_count(10, 10, 10, 0), 1);  /* exact */
    assert_int_equal(cnk_segment_count(11, 10, 10, 0), 2);  /* one extra item: padded second segment */
    assert_int_equal(cnk_segment_count(11, 10, 10, 3), 1);  /* ... unless it would be mostly padding */
    assert_int_equal(cnk_segment_count(30, 10, 10, 3), 3);
    assert_int_equal(cnk_segment_count(35, 10, 10, 3), 4);  /* 5 new items >= 3 */
    assert_int_equal(cnk_segment_count(32, 10, 10, 3), 3);  /* 2 new items < 3: dropped */
    assert_int_equal(cnk_segment_count(20, 10, 5, 0), 3);   /* overlapping: 0, 5, 10 */
    assert_int_equal(cnk_segment_count(21, 10, 5, 0), 4);
    assert_int_equal(cnk_segment_count(0, 10, 5, 0), 1);    /* empty still gives one all-padding segment */
    assert_int_equal(cnk_segment_start(3, 7), 21);
}

static void test_copy_pads(void **state)
{
    (void)state;
    float src[7] = {1, 2, 3, 4, 5, 6, 7}, dst[5];
    cnk_segment_copy(src, 7, 0, 5, -1, dst);
    float want0[5] = {1, 2, 3, 4, 5};
    assert_memory_equal(dst, want0, sizeof dst);
    cnk_segment_copy(src, 7, 5, 5, -1, dst);
    float want1[5] = {6, 7, -1, -1, -1};
    assert_memory_equal(dst, want1, sizeof dst);
    cnk_segment_copy(src, 7, 9, 5, -2, dst);
    float want2[5] = {-2, -2, -2, -2, -2};
    assert_memory_equal(dst, want2, sizeof dst);
}

static void test_copy_rows(void **state)
{
    (void)state;
    /* 2 rows x 5 frames, take frames 3..6 */
    float src[10] = {0, 1, 2, 3, 4, 10, 11, 12, 13, 14}, dst[8];
    cnk_segment_copy_rows(src, 2, 5, 3, 4, -80, dst);
    float want[8] = {3, 4, -80, -80, 13, 14, -80, -80};
    assert_memory_equal(dst, want, sizeof dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_copy_pads),
        cmocka_unit_test(test_copy_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
