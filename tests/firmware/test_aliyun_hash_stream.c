/* aliyun_hash_stream, the OTA image's digest (main/ota_update.c), over the PSA Crypto of Debian's Mbed TLS
 * 2.28: the same source and PSA calls as on ESP-IDF v5.5 (Mbed TLS 3.6) and v6.0 (4.x). Known answers from
 * RFC 1321 appendix A.5 (MD5) and FIPS 180-2 appendix B (SHA-256); the million-'a' MD5 was computed with
 * Python's hashlib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aliyun_hash_stream.h"

#define MD5_ABC "900150983cd24fb0d6963f7d28e17f72"
#define MD5_EMPTY "d41d8cd98f00b204e9800998ecf8427e"
#define MD5_DIGITS_80 "57edf4a22be3c955ac49da2e2107b67a"
#define MD5_MILLION_A "7707d6ae4e027c70eea2a935c2296f21"
#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA256_448_BITS "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
#define SHA256_MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

#define MILLION 1000000u

/* The firmware's stream lives in static storage (ota_update.c s_job), never explicitly initialised. */
static aliyun_hash_stream_t s_static;

static void one_shot(aliyun_hash_stream_alg_t alg, const char *msg, const char *want)
{
    aliyun_hash_stream_t s = {0};
    char hex[ALIYUN_HASH_STREAM_HEX_MAX + 1];
    assert_int_equal(aliyun_hash_stream_start(&s, alg), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, msg, strlen(msg)), 0);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, sizeof hex), 0);
    assert_string_equal(hex, want);
}

static void test_known_answers(void **state)
{
    (void)state;
    one_shot(ALIYUN_HASH_STREAM_MD5, "", MD5_EMPTY);
    one_shot(ALIYUN_HASH_STREAM_MD5, "abc", MD5_ABC);
    one_shot(ALIYUN_HASH_STREAM_MD5,
             "12345678901234567890123456789012345678901234567890123456789012345678901234567890", MD5_DIGITS_80);
    one_shot(ALIYUN_HASH_STREAM_SHA256, "abc", SHA256_ABC);
    one_shot(ALIYUN_HASH_STREAM_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", SHA256_448_BITS);
}

/* A million 'a' fed in chunks of the given sizes, cycled (the download's reads are of any length). */
static void million_a(aliyun_hash_stream_t *s, const size_t *sizes, size_t count)
{
    static char a[4096];
    memset(a, 'a', sizeof a);
    size_t done = 0;
    for (size_t i = 0; done < MILLION; i++) {
        size_t n = sizes[i % count];
        if (n > MILLION - done) {
            n = MILLION - done;
        }
        assert_int_equal(aliyun_hash_stream_update(s, a, n), 0);
        done += n;
    }
}

static void test_multi_part_equals_the_whole(void **state)
{
    (void)state;
    static const size_t ota_chunks[] = {4096};            /* ota_update.c CHUNK_BYTES */
    static const size_t ragged[] = {1, 63, 64, 65, 0, 4095, 127}; /* across the 64-byte blocks */
    char hex[ALIYUN_HASH_STREAM_HEX_MAX + 1];
    assert_int_equal(aliyun_hash_stream_start(&s_static, ALIYUN_HASH_STREAM_SHA256), 0);
    million_a(&s_static, ota_chunks, 1);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s_static, hex, sizeof hex), 0);
    assert_string_equal(hex, SHA256_MILLION_A);
    assert_int_equal(aliyun_hash_stream_start(&s_static, ALIYUN_HASH_STREAM_MD5), 0);
    million_a(&s_static, ragged, sizeof ragged / sizeof ragged[0]);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s_static, hex, sizeof hex), 0);
    assert_string_equal(hex, MD5_MILLION_A);
}

/* A server that ignores the Range header makes the download start over (ota_update.c slot_restart): the
 * digest restarts on a running stream and covers only what follows, in whichever algorithm it is given. */
static void test_start_drops_a_running_digest(void **state)
{
    (void)state;
    aliyun_hash_stream_t s = {0};
    char hex[ALIYUN_HASH_STREAM_HEX_MAX + 1];
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_SHA256), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, "partial image", 13), 0);
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_MD5), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, "ab", 2), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, "c", 1), 0);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, sizeof hex), 0);
    assert_string_equal(hex, MD5_ABC);
}

static void test_hex_buffer_edges(void **state)
{
    (void)state;
    aliyun_hash_stream_t s = {0};
    char hex[ALIYUN_HASH_STREAM_HEX_MAX + 1];
    /* one byte short of the digits and the NUL: refused, hex left empty, the stream idle again */
    memset(hex, 'x', sizeof hex);
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_MD5), 0);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, 32), -1);
    assert_string_equal(hex, "");
    assert_int_equal(aliyun_hash_stream_update(&s, "abc", 3), -1);
    memset(hex, 'x', sizeof hex);
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_SHA256), 0);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, ALIYUN_HASH_STREAM_HEX_MAX), -1);
    assert_string_equal(hex, "");
    /* exactly enough */
    char md5[33];
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_MD5), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, "abc", 3), 0);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, md5, sizeof md5), 0);
    assert_string_equal(md5, MD5_ABC);
}

static void test_idle_and_aborted_streams(void **state)
{
    (void)state;
    aliyun_hash_stream_t s = {0};
    char hex[ALIYUN_HASH_STREAM_HEX_MAX + 1];
    aliyun_hash_stream_abort(&s); /* idle: nothing happens */
    assert_int_equal(aliyun_hash_stream_update(&s, "abc", 3), -1);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, sizeof hex), -1);
    assert_string_equal(hex, "");
    assert_int_equal(aliyun_hash_stream_start(&s, ALIYUN_HASH_STREAM_SHA256), 0);
    assert_int_equal(aliyun_hash_stream_update(&s, "abc", 3), 0);
    aliyun_hash_stream_abort(&s); /* a failed download */
    aliyun_hash_stream_abort(&s);
    assert_int_equal(aliyun_hash_stream_finish_hex(&s, hex, sizeof hex), -1);
    assert_int_equal(aliyun_hash_stream_start(&s, (aliyun_hash_stream_alg_t)2), -1);
    one_shot(ALIYUN_HASH_STREAM_SHA256, "abc", SHA256_ABC); /* PSA itself still works */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_multi_part_equals_the_whole),
        cmocka_unit_test(test_start_drops_a_running_digest),
        cmocka_unit_test(test_hex_buffer_edges),
        cmocka_unit_test(test_idle_and_aborted_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
