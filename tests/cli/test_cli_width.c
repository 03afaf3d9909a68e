/* cli_width: ASCII, accented Latin (precomposed and combining), CJK, Hangul, kana, fullwidth
 * forms, emoji, zero-width characters, and malformed UTF-8 (each bad byte one column). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/cli_width.h"

static void test_widths(void **state)
{
    (void)state;
    assert_int_equal(cli_width(""), 0);
    assert_int_equal(cli_width("app.db"), 6);
    assert_int_equal(cli_width("caf\xc3\xa9"), 4);              /* café, precomposed */
    assert_int_equal(cli_width("cafe\xcc\x81"), 4);             /* e + COMBINING ACUTE */
    assert_int_equal(cli_width("\xe9\x85\x8d\xe7\xbd\xae"), 4); /* 配置 */
    assert_int_equal(cli_width("\xea\xb0\x80"), 2);             /* 가 (Hangul) */
    assert_int_equal(cli_width("\xe3\x81\x82"), 2);             /* あ */
    assert_int_equal(cli_width("\xef\xbc\xa1"), 2);             /* Ａ fullwidth */
    assert_int_equal(cli_width("\xef\xbd\xb1"), 1);             /* ｱ halfwidth katakana */
    assert_int_equal(cli_width("\xf0\x9f\x9a\x80"), 2);         /* 🚀 */
    assert_int_equal(cli_width("a\xe2\x80\x8b"
                               "b"),
                     2);                                /* ZERO WIDTH SPACE */
    assert_int_equal(cli_width("\xf0\xa0\x80\x80"), 2); /* U+20000, CJK extension B */
}

static void test_malformed_bytes_count_one(void **state)
{
    (void)state;
    assert_int_equal(cli_width("\xff"), 1);
    assert_int_equal(cli_width("a\x80"
                               "b"),
                     3);                                /* stray continuation byte */
    assert_int_equal(cli_width("\xe9\x85"), 2);         /* truncated 3-byte sequence */
    assert_int_equal(cli_width("\xc0\xaf"), 2);         /* overlong '/' */
    assert_int_equal(cli_width("\xed\xa0\x80"), 3);     /* a surrogate */
    assert_int_equal(cli_width("\xf4\x90\x80\x80"), 4); /* beyond U+10FFFF */
}

static void test_code_points(void **state)
{
    (void)state;
    assert_int_equal(cli_width_cp('A'), 1);
    assert_int_equal(cli_width_cp(0x0301), 0);
    assert_int_equal(cli_width_cp(0x4E00), 2);
    assert_int_equal(cli_width_cp(0x9FFF), 2);
    assert_int_equal(cli_width_cp(0xA4D0), 1);
    assert_int_equal(cli_width_cp(0xFF61), 1);
    assert_int_equal(cli_width_cp(0xFFE6), 2);
    assert_int_equal(cli_width_cp(0x10FFFF), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths),
        cmocka_unit_test(test_malformed_bytes_count_one),
        cmocka_unit_test(test_code_points),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
