/* Backoff: doubling ceilings up to the cap, equal-jitter bounds, reset, cap after refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alink_backoff.h"

static void test_ceiling_doubles_to_cap(void **state)
{
    (void)state;
    alink_backoff_t b;
    alink_backoff_init(&b, 1000, 60000);
    const uint32_t expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        assert_int_equal(alink_backoff_ceiling_ms(&b), expected[i]);
        (void)alink_backoff_next_ms(&b, 0);
    }
}

static void test_delay_within_half_and_full_ceiling(void **state)
{
    (void)state;
    alink_backoff_t b;
    uint32_t rng = 12345u;
    alink_backoff_init(&b, 500, 30000);
    for (int i = 0; i < 10000; i++) {
        uint32_t ceiling = alink_backoff_ceiling_ms(&b);
        rng = rng * 1664525u + 1013904223u; /* any sequence will do: the bounds hold for every value */
        uint32_t d = alink_backoff_next_ms(&b, rng);
        assert_true(d >= ceiling / 2);
        assert_true(d <= ceiling);
        if (i % 13 == 0) {
            alink_backoff_reset(&b);
        }
    }
}

static void test_jitter_reaches_both_ends_and_spreads(void **state)
{
    (void)state;
    alink_backoff_t b;
    alink_backoff_init(&b, 1000, 1000);
    assert_int_equal(alink_backoff_next_ms(&b, 0), 500);
    assert_int_equal(alink_backoff_next_ms(&b, 500), 1000);
    assert_int_equal(alink_backoff_next_ms(&b, UINT32_MAX), 500 + UINT32_MAX % 501);
    /* 1000 different random values give many different delays, not one */
    unsigned seen[501] = {0};
    unsigned distinct = 0;
    for (uint32_t r = 0; r < 1000; r++) {
        uint32_t d = alink_backoff_next_ms(&b, r * 2654435761u);
        if (!seen[d - 500]++) {
            distinct++;
        }
    }
    assert_true(distinct > 300);
}

static void test_reset_and_to_cap(void **state)
{
    (void)state;
    alink_backoff_t b;
    alink_backoff_init(&b, 2000, 300000);
    alink_backoff_to_cap(&b);
    assert_int_equal(alink_backoff_ceiling_ms(&b), 300000);
    uint32_t d = alink_backoff_next_ms(&b, 7);
    assert_true(d >= 150000 && d <= 300000);
    alink_backoff_reset(&b);
    assert_int_equal(alink_backoff_ceiling_ms(&b), 2000);
}

static void test_extremes_do_not_overflow(void **state)
{
    (void)state;
    alink_backoff_t b;
    alink_backoff_init(&b, UINT32_MAX / 2 + 7, UINT32_MAX);
    for (int i = 0; i < 100; i++) {
        uint32_t ceiling = alink_backoff_ceiling_ms(&b);
        uint32_t d = alink_backoff_next_ms(&b, UINT32_MAX);
        assert_true(d >= ceiling / 2 && d <= ceiling);
    }
    assert_int_equal(alink_backoff_ceiling_ms(&b), UINT32_MAX);
    alink_backoff_init(&b, 0, 0); /* raised to 1 ms, never a zero delay forever */
    assert_int_equal(alink_backoff_ceiling_ms(&b), 1);
    alink_backoff_init(&b, 5000, 10); /* cap below base: raised to base */
    assert_int_equal(alink_backoff_ceiling_ms(&b), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_to_cap), cmocka_unit_test(test_delay_within_half_and_full_ceiling),
        cmocka_unit_test(test_jitter_reaches_both_ends_and_spreads), cmocka_unit_test(test_reset_and_to_cap),
        cmocka_unit_test(test_extremes_do_not_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
