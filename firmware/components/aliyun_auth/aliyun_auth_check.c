/* What the platform refuses, checked before signing; method names and status messages. */
#include <stddef.h>
#include <string.h>

#include "aliyun_auth.h"

/* Field alphabets as strspn() sets, sharing one string: DeviceName "_@:.-" + letters and digits,
 * endpoint from ':' on, region from '.' on, timestamp the digits at the end. */
static const char name_chars[] = "_@:.-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/* ProductKey and DeviceSecret: printable ASCII but space. */
static const char printable[] = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                                "abcdefghijklmnopqrstuvwxyz{|}~";
/* The client id: anything but these (a strcspn() set; NUL ends the id anyway). */
static const char client_stop[] = "|\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11"
                                  "\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f";

/* Per field, in checking order (aliyun_auth_field_t - 1): where it is, its limit, its alphabet. */
static const unsigned char offsets[] = {
    offsetof(aliyun_auth_request_t, product_key), offsetof(aliyun_auth_request_t, device_name),
    offsetof(aliyun_auth_request_t, device_secret), offsetof(aliyun_auth_request_t, client_id),
    offsetof(aliyun_auth_request_t, timestamp), offsetof(aliyun_auth_request_t, region),
    offsetof(aliyun_auth_request_t, endpoint)};
static const unsigned char limits[] = {ALIYUN_AUTH_PRODUCT_KEY_MAX,   ALIYUN_AUTH_DEVICE_NAME_MAX,
                                       ALIYUN_AUTH_DEVICE_SECRET_MAX, ALIYUN_AUTH_CLIENT_ID_MAX,
                                       ALIYUN_AUTH_TIMESTAMP_MAX,     ALIYUN_AUTH_HOST_SIZE - 1u,
                                       ALIYUN_AUTH_HOST_SIZE - 1u};
static const char *const sets[] = {printable,  name_chars, printable, client_stop,
                                   name_chars + sizeof name_chars - 11u, name_chars + 3, name_chars + 2};

aliyun_auth_status_t aliyun_auth_validate(const aliyun_auth_request_t *r, aliyun_auth_field_t *bad_field)
{
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    aliyun_auth_status_t st = ALIYUN_AUTH_ERR_ARG;

    if (r && (unsigned)r->sign_method <= 2u && (r->secure_mode == 2 || r->secure_mode == 3)) {
        unsigned legacy = !r->endpoint || !*r->endpoint;
        st = ALIYUN_AUTH_OK;
        /* the endpoint only when given; before it, a region is optional beside an endpoint */
        for (unsigned f = 0; !st && f < sizeof offsets - legacy; f++) {
            const char *value = *(const char *const *)(const void *)((const char *)r + offsets[f]);
            if (!value && (f == 4u || (f == 5u && !legacy))) {
                continue; /* a timestamp not sent, a region beside an endpoint: not checked */
            }
            /* non-empty, every character in the field's set (the client id: none in it), within its
             * limit, and a DeviceName not under 4 characters */
            size_t n = value ? strlen(value) : 0u;
            st = n == 0u ? ALIYUN_AUTH_ERR_EMPTY
                 : (f == 3u ? strcspn(value, sets[f]) : strspn(value, sets[f])) != n ? ALIYUN_AUTH_ERR_CHARSET
                 : n > limits[f]                                                   ? ALIYUN_AUTH_ERR_TOO_LONG
                 : n < (f == 1u ? ALIYUN_AUTH_DEVICE_NAME_MIN : 1u)                ? ALIYUN_AUTH_ERR_TOO_SHORT
                                                                                   : ALIYUN_AUTH_OK;
            bad = st ? (aliyun_auth_field_t)(f + 1u) : bad;
        }
    }
    if (bad_field) {
        *bad_field = bad;
    }
    return st;
}

static const char method_names[3][11] = {"hmacmd5", "hmacsha1", "hmacsha256"};

const char *aliyun_sign_method_name(aliyun_sign_method_t method)
{
    return (unsigned)method <= 2u ? method_names[method] : NULL;
}

aliyun_auth_status_t aliyun_sign_method_parse(const char *name, aliyun_sign_method_t *method)
{
    for (unsigned m = 0; name && method && m < 3u; m++) {
        if (!strcmp(name, method_names[m])) {
            *method = (aliyun_sign_method_t)m;
            return ALIYUN_AUTH_OK;
        }
    }
    return ALIYUN_AUTH_ERR_ARG;
}

const char *aliyun_auth_strerror(aliyun_auth_status_t status)
{
    /* In status order; the last one answers any other value. */
    static const char messages[][24] = {"ok",       "invalid argument", "empty",
                                        "character not allowed", "too long", "too short",
                                        "output buffer too small", "digest failed", "unknown status"};
    return messages[(unsigned)status > ALIYUN_AUTH_ERR_CRYPTO ? 8u : (unsigned)status];
}
