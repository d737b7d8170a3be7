/* Zero heap allocations in the signing path. The test binary is linked with --wrap for malloc,
 * calloc and realloc (tests/firmware/CMakeLists.txt), which redirects every call from our objects
 * and from mbedtls' static archive to the counters below. The first test proves the counters see
 * mbedtls: mbedtls_md_setup() calloc()s its digest and HMAC contexts, which is why aliyun_auth
 * builds HMAC (RFC 2104) on the one-shot digests instead of using mbedtls_md_hmac*. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aliyun_auth.h"
#include "mbedtls/md.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);

static unsigned allocations;

void *__wrap_malloc(size_t size)
{
    allocations++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    allocations++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    allocations++;
    return __real_realloc(p, size);
}

static void test_counter_sees_mbedtls_md_allocations(void **state)
{
    (void)state;
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    allocations = 0;
    assert_int_equal(mbedtls_md_setup(&ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), 1), 0);
    assert_true(allocations > 0);
    mbedtls_md_free(&ctx);
}

static void test_signing_allocates_nothing(void **state)
{
    (void)state;
    char long_key[129];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    const char *secrets[] = {"secret", long_key};
    aliyun_auth_credentials_t c;
    allocations = 0;
    for (int m = ALIYUN_SIGN_HMACMD5; m <= ALIYUN_SIGN_HMACSHA256; m++) {
        for (size_t s = 0; s < 2; s++) {
            aliyun_auth_request_t r = {"pk", "device", secrets[s], "12345", "789", (aliyun_sign_method_t)m, 2,
                                       "cn-shanghai", NULL};
            assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
            r.timestamp = NULL;
            assert_int_equal(aliyun_auth_sign(&r, &c, NULL), ALIYUN_AUTH_OK);
        }
    }
    assert_int_equal(allocations, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_sees_mbedtls_md_allocations),
        cmocka_unit_test(test_signing_allocates_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
