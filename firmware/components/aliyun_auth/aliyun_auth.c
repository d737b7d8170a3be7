/* Signing for Alibaba Cloud IoT Platform MQTT CONNECT: the HMAC and the credential strings.
 * Field validation, names and messages live in aliyun_auth_check.c. Rules: see aliyun_auth.h. */
#include "aliyun_auth.h"

#include <stdio.h>
#include <string.h>

#include "mbedtls/md5.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha1.h"
#include "mbedtls/sha256.h"
#include "mbedtls/version.h"

/* mbedtls 2.x (Debian 12) names the int-returning one-shot digests *_ret; 3.x (ESP-IDF v5.5) drops it. */
#if MBEDTLS_VERSION_MAJOR < 3
#define md5_oneshot mbedtls_md5_ret
#define sha1_oneshot mbedtls_sha1_ret
#define sha256_oneshot mbedtls_sha256_ret
#else
#define md5_oneshot mbedtls_md5
#define sha1_oneshot mbedtls_sha1
#define sha256_oneshot mbedtls_sha256
#endif

/* MD5, SHA-1 and SHA-256 all hash 64-byte blocks (RFC 1321, FIPS 180-4): one HMAC block size B. */
#define HMAC_BLOCK 64u
#define DIGEST_MAX 32u
/* Longest signed content of a valid request: the four names plus the four fields at their limits. */
#define CONTENT_MAX (8u + 10u + 10u + 9u + ALIYUN_AUTH_CLIENT_ID_MAX + ALIYUN_AUTH_DEVICE_NAME_MAX + \
                     ALIYUN_AUTH_PRODUCT_KEY_MAX + ALIYUN_AUTH_TIMESTAMP_MAX)

/* Everything secret-derived, in one place so that one zeroize clears it. */
typedef struct {
    unsigned char key[HMAC_BLOCK];                  /* K' of RFC 2104 */
    unsigned char buf[HMAC_BLOCK + CONTENT_MAX + 1u]; /* (K' ^ pad) || text-or-inner-digest */
    unsigned char mac[DIGEST_MAX];
} hmac_work_t;

static size_t digest_size(aliyun_sign_method_t m)
{
    return m == ALIYUN_SIGN_HMACMD5 ? 16u : m == ALIYUN_SIGN_HMACSHA1 ? 20u : 32u;
}

/* One-shot digests keep their context on the stack and free it (on ESP32 that also releases the
 * SHA engine); the generic mbedtls_md_setup() would calloc() a context instead. */
static int digest(aliyun_sign_method_t m, const unsigned char *in, size_t len, unsigned char *out)
{
    if (m == ALIYUN_SIGN_HMACMD5) {
        return md5_oneshot(in, len, out);
    }
    if (m == ALIYUN_SIGN_HMACSHA1) {
        return sha1_oneshot(in, len, out);
    }
    return sha256_oneshot(in, len, out, 0);
}

/* H((K' ^ pad) || the tail_len bytes already after the first block of w->buf). */
static int pad_and_digest(aliyun_sign_method_t m, hmac_work_t *w, unsigned pad, size_t tail_len,
                          unsigned char *out)
{
    for (size_t i = 0; i < HMAC_BLOCK; i++) {
        w->buf[i] = (unsigned char)(w->key[i] ^ pad);
    }
    return digest(m, w->buf, HMAC_BLOCK + tail_len, out);
}

aliyun_auth_status_t aliyun_auth_password(aliyun_sign_method_t method, const char *device_secret,
                                          const char *client_id, const char *device_name,
                                          const char *product_key, const char *timestamp, char *out,
                                          size_t out_size)
{
    hmac_work_t w;
    aliyun_auth_status_t st = ALIYUN_AUTH_ERR_ARG;
    size_t n = digest_size(method);

    if (!device_secret || !client_id || !device_name || !product_key || !out || (unsigned)method > 2u) {
        return st;
    }
    memset(&w, 0, sizeof w);
    int text_len = snprintf((char *)w.buf + HMAC_BLOCK, sizeof w.buf - HMAC_BLOCK,
                            "clientId%sdeviceName%sproductKey%s%s%s", client_id, device_name, product_key,
                            timestamp ? "timestamp" : "", timestamp ? timestamp : "");
    size_t key_len = strlen(device_secret);
    /* RFC 2104 section 2: K' is the key zero-padded to B bytes, or H(key) when longer than B. */
    int rc = key_len > HMAC_BLOCK ? digest(method, (const unsigned char *)device_secret, key_len, w.key)
                                  : (memcpy(w.key, device_secret, key_len), 0);
    st = ALIYUN_AUTH_ERR_BUFFER;
    if (text_len >= 0 && (size_t)text_len < sizeof w.buf - HMAC_BLOCK && out_size > 2u * n) {
        /* HMAC = H((K' ^ opad) || H((K' ^ ipad) || text)), ipad 0x36, opad 0x5c */
        rc |= pad_and_digest(method, &w, 0x36, (size_t)text_len, w.buf + HMAC_BLOCK);
        rc |= pad_and_digest(method, &w, 0x5c, n, w.mac);
        st = rc ? ALIYUN_AUTH_ERR_CRYPTO : ALIYUN_AUTH_OK;
    }
    for (size_t i = 0; st == ALIYUN_AUTH_OK && i < n; i++) {
        out[2 * i] = "0123456789ABCDEF"[w.mac[i] >> 4];
        out[2 * i + 1] = "0123456789ABCDEF"[w.mac[i] & 15];
        out[2 * i + 2] = '\0';
    }
    mbedtls_platform_zeroize(&w, sizeof w);
    return st;
}

aliyun_auth_status_t aliyun_auth_sign(const aliyun_auth_request_t *r, aliyun_auth_credentials_t *out,
                                      aliyun_auth_field_t *bad_field)
{
    aliyun_auth_status_t st = aliyun_auth_validate(r, bad_field);
    if (!out) {
        return ALIYUN_AUTH_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    if (st != ALIYUN_AUTH_OK) {
        return st;
    }
    const char *ts = r->timestamp;
    const char *method = aliyun_sign_method_name(r->sign_method);
    int legacy = !r->endpoint || !*r->endpoint;
    size_t cid = (size_t)snprintf(out->client_id, sizeof out->client_id, "%s|securemode=%d,signmethod=%s%s%s|",
                                  r->client_id, r->secure_mode, method, ts ? ",timestamp=" : "", ts ? ts : "");
    size_t user = (size_t)snprintf(out->username, sizeof out->username, "%s&%s", r->device_name, r->product_key);
    size_t host = (size_t)snprintf(out->host, sizeof out->host, legacy ? "%s.iot-as-mqtt.%s.aliyuncs.com" : "%s",
                                   legacy ? r->product_key : r->endpoint, r->region);
    out->port = r->secure_mode == 2 ? 8883u : 1883u;
    st = cid >= sizeof out->client_id || user >= sizeof out->username || host >= sizeof out->host
             ? ALIYUN_AUTH_ERR_BUFFER
             : aliyun_auth_password(r->sign_method, r->device_secret, r->client_id, r->device_name,
                                    r->product_key, ts, out->password, sizeof out->password);
    if (st != ALIYUN_AUTH_OK) {
        memset(out, 0, sizeof *out);
    }
    return st;
}

const char *aliyun_sign_method_name(aliyun_sign_method_t method)
{
    static const char names[3][11] = {"hmacmd5", "hmacsha1", "hmacsha256"};
    return (unsigned)method <= 2u ? names[method] : NULL;
}
