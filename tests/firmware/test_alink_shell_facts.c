/* What the shells hand the core: the MAC client id rule and mbedtls' certificate verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>

#include "alink_shell_facts.h"

static void test_a_real_mac_is_twelve_uppercase_hex_digits(void **state)
{
    (void)state;
    const uint8_t mac[6] = {0xa4, 0xcf, 0x12, 0x03, 0x4e, 0xf0};
    char id[13];
    assert_true(alink_client_id_from_mac(mac, id, sizeof id));
    assert_string_equal(id, "A4CF12034EF0");
}

static void test_a_blank_mac_never_becomes_a_client_id(void **state)
{
    (void)state;
    const uint8_t zeros[6] = {0};
    const uint8_t ones[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t one_bit[6] = {0, 0, 0, 0, 0, 1};
    char id[13] = "previous";
    assert_false(alink_client_id_from_mac(zeros, id, sizeof id)); /* Espressif's QEMU */
    assert_string_equal(id, "");
    assert_false(alink_client_id_from_mac(ones, id, sizeof id)); /* erased eFuse */
    assert_string_equal(id, "");
    assert_true(alink_client_id_from_mac(one_bit, id, sizeof id));
    assert_string_equal(id, "000000000001");
}

static void test_a_short_buffer_is_refused(void **state)
{
    (void)state;
    const uint8_t mac[6] = {0xa4, 0xcf, 0x12, 0x03, 0x4e, 0xf0};
    char id[12] = "x";
    assert_false(alink_client_id_from_mac(mac, id, sizeof id));
    assert_string_equal(id, "");
    assert_false(alink_client_id_from_mac(NULL, id, sizeof id));
    assert_false(alink_client_id_from_mac(mac, NULL, 13));
}

static void test_the_flag_numbers_are_mbedtls_own(void **state)
{
    (void)state;
    assert_int_equal(ALINK_MBEDTLS_BADCERT_EXPIRED, MBEDTLS_X509_BADCERT_EXPIRED);
    assert_int_equal(ALINK_MBEDTLS_BADCERT_CN_MISMATCH, MBEDTLS_X509_BADCERT_CN_MISMATCH);
    assert_int_equal(ALINK_MBEDTLS_BADCERT_NOT_TRUSTED, MBEDTLS_X509_BADCERT_NOT_TRUSTED);
    assert_int_equal(ALINK_MBEDTLS_BADCERT_FUTURE, MBEDTLS_X509_BADCERT_FUTURE);
    assert_int_equal(ALINK_MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, MBEDTLS_ERR_X509_CERT_VERIFY_FAILED);
}

static void test_mbedtls_verdicts_map_to_one_refusal(void **state)
{
    (void)state;
    const int failed = MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
    assert_int_equal(alink_cert_refusal_from_mbedtls(failed, MBEDTLS_X509_BADCERT_NOT_TRUSTED), ALINK_CERT_UNTRUSTED);
    assert_int_equal(alink_cert_refusal_from_mbedtls(failed, MBEDTLS_X509_BADCERT_EXPIRED), ALINK_CERT_EXPIRED);
    assert_int_equal(alink_cert_refusal_from_mbedtls(
                         failed, MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_NOT_TRUSTED),
                     ALINK_CERT_EXPIRED);
    assert_int_equal(alink_cert_refusal_from_mbedtls(failed, MBEDTLS_X509_BADCERT_FUTURE), ALINK_CERT_NOT_YET_VALID);
    assert_int_equal(alink_cert_refusal_from_mbedtls(failed, MBEDTLS_X509_BADCERT_CN_MISMATCH),
                     ALINK_CERT_NAME_MISMATCH);
    /* esp-tls reports no flags when no peer certificate was parsed: the handshake error still names it */
    assert_int_equal(alink_cert_refusal_from_mbedtls(failed, 0), ALINK_CERT_REJECTED);
    assert_int_equal(alink_cert_refusal_from_mbedtls(0, MBEDTLS_X509_BADCERT_REVOKED), ALINK_CERT_REJECTED);
    /* a plain network failure is no certificate refusal */
    assert_int_equal(alink_cert_refusal_from_mbedtls(0, 0), ALINK_CERT_ACCEPTED);
    assert_int_equal(alink_cert_refusal_from_mbedtls(MBEDTLS_ERR_SSL_CONN_EOF, 0), ALINK_CERT_ACCEPTED);
}

static void test_every_refusal_has_a_text(void **state)
{
    (void)state;
    assert_string_equal(alink_cert_refusal_text(ALINK_CERT_UNTRUSTED), "unknown CA");
    assert_string_equal(alink_cert_refusal_text(ALINK_CERT_EXPIRED), "expired");
    assert_string_equal(alink_cert_refusal_text(ALINK_CERT_REJECTED), "verification failed");
    assert_string_equal(alink_cert_refusal_text((alink_cert_refusal_t)99), "verification failed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_real_mac_is_twelve_uppercase_hex_digits),
        cmocka_unit_test(test_a_blank_mac_never_becomes_a_client_id),
        cmocka_unit_test(test_a_short_buffer_is_refused),
        cmocka_unit_test(test_the_flag_numbers_are_mbedtls_own),
        cmocka_unit_test(test_mbedtls_verdicts_map_to_one_refusal),
        cmocka_unit_test(test_every_refusal_has_a_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
