/* The multi-part digest over PSA Crypto; the contract is in aliyun_hash_stream.h. */
#include "aliyun_hash_stream.h"

#include <stdint.h>

/* The OTA platform sends MD5 or SHA-256 signs (alink_ota.h). ESP-IDF v6 can build Mbed TLS without MD5
 * (menuconfig: CONFIG_MBEDTLS_MD5_C, mbedtls/esp_config.h then leaves PSA_WANT_ALG_MD5 undefined): such a
 * build could not check an MD5-signed image, so it does not build. On v5.5 (Mbed TLS 3.6) and the host
 * (2.28) the PSA_WANT_ALG_* follow MBEDTLS_MD5_C/MBEDTLS_SHA256_C (mbedtls/config_psa.h,
 * config_adjust_psa_from_legacy.h), which their configurations define. */
#if !defined(PSA_WANT_ALG_MD5) || !defined(PSA_WANT_ALG_SHA_256)
#error "OTA images are signed with MD5 or SHA-256: enable both in Mbed TLS (CONFIG_MBEDTLS_MD5_C, CONFIG_MBEDTLS_SHA256_C)"
#endif

int aliyun_hash_stream_start(aliyun_hash_stream_t *s, aliyun_hash_stream_alg_t alg)
{
    psa_algorithm_t algorithm;
    switch (alg) {
    case ALIYUN_HASH_STREAM_MD5:
        algorithm = PSA_ALG_MD5;
        break;
    case ALIYUN_HASH_STREAM_SHA256:
        algorithm = PSA_ALG_SHA_256;
        break;
    default:
        return -1;
    }
    /* psa_hash_setup() refuses an operation that is not idle */
    (void)psa_hash_abort(&s->op);
    /* the PSA Crypto API asks for it before any other call; it is idempotent (psa_crypto_init) */
    if (psa_crypto_init() != PSA_SUCCESS) {
        return -1;
    }
    return psa_hash_setup(&s->op, algorithm) == PSA_SUCCESS ? 0 : -1;
}

int aliyun_hash_stream_update(aliyun_hash_stream_t *s, const void *data, size_t len)
{
    if (psa_hash_update(&s->op, (const uint8_t *)data, len) == PSA_SUCCESS) {
        return 0;
    }
    (void)psa_hash_abort(&s->op); /* a failed update leaves the operation in an error state */
    return -1;
}

int aliyun_hash_stream_finish_hex(aliyun_hash_stream_t *s, char *hex, size_t hex_size)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t digest[PSA_HASH_MAX_SIZE];
    size_t n = 0;
    if (hex_size > 0) {
        hex[0] = '\0';
    }
    psa_status_t st = psa_hash_finish(&s->op, digest, sizeof digest, &n);
    (void)psa_hash_abort(&s->op); /* idle after success already; after a failure this makes it so */
    if (st != PSA_SUCCESS || hex_size < 2u * n + 1u) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        hex[2u * i] = digits[digest[i] >> 4];
        hex[2u * i + 1u] = digits[digest[i] & 0x0fu];
    }
    hex[2u * n] = '\0';
    return 0;
}

void aliyun_hash_stream_abort(aliyun_hash_stream_t *s)
{
    (void)psa_hash_abort(&s->op);
}
