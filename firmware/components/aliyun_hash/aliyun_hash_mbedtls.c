/* aliyun_auth's digests on Mbed TLS 2.28 (the host build, Debian 12) and 3.x (ESP-IDF v5.5): the one-shot
 * functions keep their context on the stack and free it (on ESP32 that also releases the SHA engine); the
 * generic mbedtls_md_setup() would calloc() one instead. */
#include "aliyun_auth.h"
#include "aliyun_hash_hmac.h"
#include "mbedtls/md5.h"
#include "mbedtls/sha1.h"
#include "mbedtls/sha256.h"
#include "mbedtls/version.h"

/* 2.x names the int-returning one-shot digests *_ret; 3.x drops the suffix. */
#if MBEDTLS_VERSION_MAJOR < 3
#define md5_oneshot mbedtls_md5_ret
#define sha1_oneshot mbedtls_sha1_ret
#define sha256_oneshot mbedtls_sha256_ret
#else
#define md5_oneshot mbedtls_md5
#define sha1_oneshot mbedtls_sha1
#define sha256_oneshot mbedtls_sha256
#endif

static int digest(aliyun_sign_method_t method, const unsigned char *in, size_t len, unsigned char *out)
{
    switch (method) {
    case ALIYUN_SIGN_HMACMD5:
        return md5_oneshot(in, len, out);
    case ALIYUN_SIGN_HMACSHA1:
        return sha1_oneshot(in, len, out);
    case ALIYUN_SIGN_HMACSHA256:
        return sha256_oneshot(in, len, out, 0);
    }
    return -1;
}

static int hmac(aliyun_sign_method_t method, const unsigned char *key, size_t key_len, const unsigned char *msg,
                size_t msg_len, unsigned char *mac)
{
    return aliyun_hash_hmac(digest, method, key, key_len, msg, msg_len, mac);
}

const aliyun_auth_hash_t aliyun_auth_hash = {hmac};
