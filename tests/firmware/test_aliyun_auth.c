/* aliyun_auth: known answers for every method, the no-timestamp form, validation and buffer edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aliyun_auth.h"

/* Aliyun's published vector (Link SDK docs, "MQTT-TCP connection"): key "secret", hmacsha1 over
 * clientId12345deviceNamedeviceproductKeypktimestamp789. The other expectations were computed
 * independently with Python's hmac module over the same content. */
#define VECTOR_SHA1 "FAFD82A3D602B37FB0FA8B7892F24A477F851A14"
#define VECTOR_MD5 "14B198324FE55E1D3C88F2E705E201EE"
#define VECTOR_SHA256 "6074A46A91B1EBB2CC4EA42790AD0E80202C9843859FC292E57C4EB19FAD9E57"
#define VECTOR_SHA1_NO_TIMESTAMP "3504E4DF7CE4766D30F796EE973C9CE7FC5425CB"
#define VECTOR_SHA256_KEY_100_K "C41E2177999BA1746A9A3AB1CDD51B10EE9C9D73F14284C5FC66EEACF8C6CD68"
#define VECTOR_MD5_KEY_64_A "CBEA21350D20E11887D6F2BADEAA4785"

static aliyun_auth_request_t vector_request(void)
{
    aliyun_auth_request_t r = {
        .product_key = "pk",
        .device_name = "device",
        .device_secret = "secret",
        .client_id = "12345",
        .timestamp = "789",
        .sign_method = ALIYUN_SIGN_HMACSHA1,
        .secure_mode = 2,
        .region = "cn-shanghai",
        .endpoint = NULL,
    };
    return r;
}

static void test_published_vector_sha1(void **state)
{
    (void)state;
    aliyun_auth_request_t r = vector_request();
    aliyun_auth_credentials_t c;
    aliyun_auth_field_t bad = ALIYUN_FIELD_CLIENT_ID;
    assert_int_equal(aliyun_auth_sign(&r, &c, &bad), ALIYUN_AUTH_OK);
    assert_int_equal(bad, ALIYUN_FIELD_NONE);
    assert_string_equal(c.password, VECTOR_SHA1);
    assert_string_equal(c.client_id, "12345|securemode=2,signmethod=hmacsha1,timestamp=789|");
    assert_string_equal(c.username, "device&pk");
    assert_string_equal(c.host, "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com");
    assert_int_equal(c.port, 8883);
}

static void test_md5_and_sha256(void **state)
{
    (void)state;
    aliyun_auth_request_t r = vector_request();
    aliyun_auth_credentials_t c;
    r.sign_method = ALIYUN_SIGN_HMACMD5;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
    assert_string_equal(c.password, VECTOR_MD5);
    assert_string_equal(c.client_id, "12345|securemode=2,signmethod=hmacmd5,timestamp=789|");
    r.sign_method = ALIYUN_SIGN_HMACSHA256;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
    assert_string_equal(c.password, VECTOR_SHA256);
    assert_string_equal(c.client_id, "12345|securemode=2,signmethod=hmacsha256,timestamp=789|");
}

static void test_no_timestamp_left_out_of_id_and_content(void **state)
{
    (void)state;
    aliyun_auth_request_t r = vector_request();
    aliyun_auth_credentials_t c;
    r.timestamp = NULL;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
    assert_string_equal(c.password, VECTOR_SHA1_NO_TIMESTAMP);
    assert_string_equal(c.client_id, "12345|securemode=2,signmethod=hmacsha1|");
}

static void test_keys_at_and_over_block_size(void **state)
{
    (void)state;
    char key[101];
    char out[ALIYUN_AUTH_PASSWORD_SIZE];
    memset(key, 'K', 100);
    key[100] = '\0';
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA256, key, "12345", "device", "pk", "789", out,
                                          sizeof out),
                     ALIYUN_AUTH_OK);
    assert_string_equal(out, VECTOR_SHA256_KEY_100_K);
    memset(key, 'A', 64);
    key[64] = '\0';
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACMD5, key, "12345", "device", "pk", "789", out, sizeof out),
                     ALIYUN_AUTH_OK);
    assert_string_equal(out, VECTOR_MD5_KEY_64_A);
}

static void test_endpoint_and_plain_mode(void **state)
{
    (void)state;
    aliyun_auth_request_t r = vector_request();
    aliyun_auth_credentials_t c;
    r.endpoint = "iot-06z00abc.mqtt.iothub.aliyuncs.com";
    r.secure_mode = 3;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
    assert_string_equal(c.host, "iot-06z00abc.mqtt.iothub.aliyuncs.com");
    assert_int_equal(c.port, 1883);
    assert_string_equal(c.client_id, "12345|securemode=3,signmethod=hmacsha1,timestamp=789|");
    assert_string_equal(c.password, VECTOR_SHA1); /* the endpoint is not signed */
}

static void expect_refusal(aliyun_auth_request_t r, aliyun_auth_status_t status, aliyun_auth_field_t field)
{
    aliyun_auth_credentials_t c;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    memset(&c, 'x', sizeof c);
    assert_int_equal(aliyun_auth_sign(&r, &c, &bad), status);
    assert_int_equal(bad, field);
    assert_int_equal(c.password[0], '\0'); /* nothing half-done is left behind */
    assert_int_equal(c.client_id[0], '\0');
}

static void test_refusals(void **state)
{
    (void)state;
    char long_id[ALIYUN_AUTH_CLIENT_ID_MAX + 2];
    aliyun_auth_request_t r = vector_request();
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';

    r = vector_request(), r.client_id = long_id;
    expect_refusal(r, ALIYUN_AUTH_ERR_TOO_LONG, ALIYUN_FIELD_CLIENT_ID);
    long_id[ALIYUN_AUTH_CLIENT_ID_MAX] = '\0'; /* exactly 64 is allowed */
    aliyun_auth_credentials_t c;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);

    r = vector_request(), r.client_id = "a|b";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_CLIENT_ID);
    r = vector_request(), r.client_id = "a\nb";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_CLIENT_ID);
    r = vector_request(), r.client_id = "a\x7f";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_CLIENT_ID);
    r = vector_request(), r.product_key = "";
    expect_refusal(r, ALIYUN_AUTH_ERR_EMPTY, ALIYUN_FIELD_PRODUCT_KEY);
    r = vector_request(), r.product_key = "p k";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_PRODUCT_KEY);
    r = vector_request(), r.device_name = "dev";
    expect_refusal(r, ALIYUN_AUTH_ERR_TOO_SHORT, ALIYUN_FIELD_DEVICE_NAME);
    r = vector_request(), r.device_name = "d123456789012345678901234567890123";
    expect_refusal(r, ALIYUN_AUTH_ERR_TOO_LONG, ALIYUN_FIELD_DEVICE_NAME);
    r = vector_request(), r.device_name = NULL;
    expect_refusal(r, ALIYUN_AUTH_ERR_EMPTY, ALIYUN_FIELD_DEVICE_NAME);
    r = vector_request(), r.device_name = "dev ice";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_DEVICE_NAME);
    r = vector_request(), r.device_secret = "sec ret";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_DEVICE_SECRET);
    r = vector_request(), r.device_secret = "";
    expect_refusal(r, ALIYUN_AUTH_ERR_EMPTY, ALIYUN_FIELD_DEVICE_SECRET);
    r = vector_request(), r.timestamp = "78a9";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_TIMESTAMP);
    r = vector_request(), r.timestamp = "";
    expect_refusal(r, ALIYUN_AUTH_ERR_EMPTY, ALIYUN_FIELD_TIMESTAMP);
    r = vector_request(), r.timestamp = "123456789012345678901";
    expect_refusal(r, ALIYUN_AUTH_ERR_TOO_LONG, ALIYUN_FIELD_TIMESTAMP);
    r = vector_request(), r.region = "cn_shanghai";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_REGION);
    r = vector_request(), r.endpoint = "evil.example/x";
    expect_refusal(r, ALIYUN_AUTH_ERR_CHARSET, ALIYUN_FIELD_ENDPOINT);
    r = vector_request(), r.sign_method = (aliyun_sign_method_t)7;
    expect_refusal(r, ALIYUN_AUTH_ERR_ARG, ALIYUN_FIELD_NONE);
    r = vector_request(), r.secure_mode = 1;
    expect_refusal(r, ALIYUN_AUTH_ERR_ARG, ALIYUN_FIELD_NONE);
    assert_int_equal(aliyun_auth_sign(NULL, &c, NULL), ALIYUN_AUTH_ERR_ARG);
    r = vector_request();
    assert_int_equal(aliyun_auth_sign(&r, NULL, NULL), ALIYUN_AUTH_ERR_ARG);
}

/* The client ids Alibaba's SDKs and the platform use ("pk.dn", "pk&dn"), and endpoints that are
 * addresses: signed as given. Only "|" and control characters end a client id. */
static void test_client_ids_of_the_sdks_and_address_endpoints(void **state)
{
    (void)state;
    static const char *const ids[] = {"pk.device", "pk&device", "a,b=c d", "A4:CF:12:34:56:78"};
    static const char *const endpoints[] = {"127.0.0.1", "localhost", "::1", "192.168.1.20"};
    aliyun_auth_credentials_t c;
    char expected[ALIYUN_AUTH_MQTT_CLIENT_ID_SIZE];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        aliyun_auth_request_t r = vector_request();
        r.client_id = ids[i];
        assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
        snprintf(expected, sizeof expected, "%s|securemode=2,signmethod=hmacsha1,timestamp=789|", ids[i]);
        assert_string_equal(c.client_id, expected);
    }
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        aliyun_auth_request_t r = vector_request();
        r.endpoint = endpoints[i];
        assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
        assert_string_equal(c.host, endpoints[i]);
        assert_string_equal(c.password, VECTOR_SHA1);
    }
}

static void test_every_status_has_its_message(void **state)
{
    (void)state;
    static const char *const messages[] = {"ok",        "invalid argument",        "empty",
                                           "character not allowed", "too long", "too short",
                                           "output buffer too small", "digest failed"};
    for (int s = ALIYUN_AUTH_OK; s <= ALIYUN_AUTH_ERR_CRYPTO; s++) {
        assert_string_equal(aliyun_auth_strerror((aliyun_auth_status_t)s), messages[s]);
    }
    assert_string_equal(aliyun_auth_strerror((aliyun_auth_status_t)99), "unknown status");
    assert_string_equal(aliyun_auth_strerror((aliyun_auth_status_t)-1), "unknown status");
}

static void test_host_that_does_not_fit_is_an_error(void **state)
{
    (void)state;
    char region[ALIYUN_AUTH_HOST_SIZE];
    aliyun_auth_request_t r = vector_request();
    memset(region, 'r', sizeof region - 1);
    region[sizeof region - 1] = '\0';
    region[ALIYUN_AUTH_HOST_SIZE - 1 - strlen("pk.iot-as-mqtt..aliyuncs.com")] = '\0'; /* fits exactly */
    r.region = region;
    aliyun_auth_credentials_t c;
    assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
    assert_int_equal(strlen(c.host), ALIYUN_AUTH_HOST_SIZE - 1);
    region[strlen(region)] = 'r'; /* one more character */
    expect_refusal(r, ALIYUN_AUTH_ERR_BUFFER, ALIYUN_FIELD_NONE);
}

static void test_password_buffer_edges(void **state)
{
    (void)state;
    char out[41];
    memset(out, '#', sizeof out);
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA1, "secret", "12345", "device", "pk", "789", out, 40),
                     ALIYUN_AUTH_ERR_BUFFER);
    assert_int_equal(out[0], '#'); /* nothing written on refusal */
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA1, "secret", "12345", "device", "pk", "789", out, 41),
                     ALIYUN_AUTH_OK);
    assert_string_equal(out, VECTOR_SHA1);

    /* A verifier passes whatever a client sent: content beyond the bound is refused, not cut. */
    char huge[400];
    memset(huge, 'z', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA1, "secret", huge, "device", "pk", "789", out, 41),
                     ALIYUN_AUTH_ERR_BUFFER);
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA1, NULL, "1", "d", "p", NULL, out, 41),
                     ALIYUN_AUTH_ERR_ARG);
    assert_int_equal(aliyun_auth_password((aliyun_sign_method_t)3, "s", "1", "d", "p", NULL, out, 41),
                     ALIYUN_AUTH_ERR_ARG);
}

static void test_method_names(void **state)
{
    (void)state;
    aliyun_sign_method_t m = ALIYUN_SIGN_HMACMD5;
    assert_int_equal(aliyun_sign_method_parse("hmacsha256", &m), ALIYUN_AUTH_OK);
    assert_int_equal(m, ALIYUN_SIGN_HMACSHA256);
    assert_int_equal(aliyun_sign_method_parse("hmacsha1", &m), ALIYUN_AUTH_OK);
    assert_int_equal(m, ALIYUN_SIGN_HMACSHA1);
    assert_int_equal(aliyun_sign_method_parse("HMACSHA1", &m), ALIYUN_AUTH_ERR_ARG);
    assert_int_equal(aliyun_sign_method_parse("sha1", &m), ALIYUN_AUTH_ERR_ARG);
    assert_null(aliyun_sign_method_name((aliyun_sign_method_t)3));
    assert_string_equal(aliyun_auth_strerror(ALIYUN_AUTH_ERR_TOO_LONG), "too long");
    assert_string_equal(aliyun_auth_strerror((aliyun_auth_status_t)99), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_vector_sha1),
        cmocka_unit_test(test_md5_and_sha256),
        cmocka_unit_test(test_no_timestamp_left_out_of_id_and_content),
        cmocka_unit_test(test_keys_at_and_over_block_size),
        cmocka_unit_test(test_endpoint_and_plain_mode),
        cmocka_unit_test(test_client_ids_of_the_sdks_and_address_endpoints),
        cmocka_unit_test(test_every_status_has_its_message),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_host_that_does_not_fit_is_an_error),
        cmocka_unit_test(test_password_buffer_edges),
        cmocka_unit_test(test_method_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
