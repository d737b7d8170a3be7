/* What the platform refuses, checked before signing; method names and status messages. */
#include <string.h>

#include "aliyun_auth.h"

/* Whether every character of s is a letter, a digit or in `extra`; extra NULL: any printable ASCII
 * but space (secrets are opaque). */
static int chars_ok(const char *s, const char *extra)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
        if (extra ? !(alnum || strchr(extra, c)) : (c <= ' ' || c >= 0x7f)) {
            return 0;
        }
    }
    return 1;
}

static aliyun_auth_status_t check(const char *s, size_t max, const char *extra)
{
    return !s || !*s              ? ALIYUN_AUTH_ERR_EMPTY
           : !chars_ok(s, extra) ? ALIYUN_AUTH_ERR_CHARSET
           : strlen(s) > max     ? ALIYUN_AUTH_ERR_TOO_LONG
                                 : ALIYUN_AUTH_OK;
}

aliyun_auth_status_t aliyun_auth_validate(const aliyun_auth_request_t *r, aliyun_auth_field_t *bad_field)
{
    static const char name_extra[] = "-_@.:"; /* DeviceName's alphabet beyond letters and digits */
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    aliyun_auth_status_t st = ALIYUN_AUTH_ERR_ARG;

    if (r && aliyun_sign_method_name(r->sign_method) && (r->secure_mode == 2 || r->secure_mode == 3)) {
        int legacy = !r->endpoint || !*r->endpoint;
        const char *ts = r->timestamp;
        if ((st = check(r->product_key, ALIYUN_AUTH_PRODUCT_KEY_MAX, NULL))) {
            bad = ALIYUN_FIELD_PRODUCT_KEY;
        } else if ((st = check(r->device_name, ALIYUN_AUTH_DEVICE_NAME_MAX, name_extra)) ||
                   (strlen(r->device_name) < ALIYUN_AUTH_DEVICE_NAME_MIN && (st = ALIYUN_AUTH_ERR_TOO_SHORT))) {
            bad = ALIYUN_FIELD_DEVICE_NAME;
        } else if ((st = check(r->device_secret, ALIYUN_AUTH_DEVICE_SECRET_MAX, NULL))) {
            bad = ALIYUN_FIELD_DEVICE_SECRET;
        } else if ((st = check(r->client_id, ALIYUN_AUTH_CLIENT_ID_MAX, name_extra))) {
            bad = ALIYUN_FIELD_CLIENT_ID;
        } else if (ts && (st = check(ts, ALIYUN_AUTH_TIMESTAMP_MAX, "")) == ALIYUN_AUTH_OK &&
                   ts[strspn(ts, "0123456789")] != '\0') {
            st = ALIYUN_AUTH_ERR_CHARSET;
        }
        if (st && bad == ALIYUN_FIELD_NONE) {
            bad = ALIYUN_FIELD_TIMESTAMP;
        } else if (!st && (legacy || r->region) && (st = check(r->region, ALIYUN_AUTH_HOST_SIZE - 1u, "-."))) {
            bad = ALIYUN_FIELD_REGION;
        } else if (!st && !legacy && (st = check(r->endpoint, ALIYUN_AUTH_HOST_SIZE - 1u, "-."))) {
            bad = ALIYUN_FIELD_ENDPOINT;
        }
    }
    if (bad_field) {
        *bad_field = bad;
    }
    return st;
}

aliyun_auth_status_t aliyun_sign_method_parse(const char *name, aliyun_sign_method_t *method)
{
    for (int m = ALIYUN_SIGN_HMACMD5; name && method && m <= ALIYUN_SIGN_HMACSHA256; m++) {
        if (strcmp(name, aliyun_sign_method_name((aliyun_sign_method_t)m)) == 0) {
            *method = (aliyun_sign_method_t)m;
            return ALIYUN_AUTH_OK;
        }
    }
    return ALIYUN_AUTH_ERR_ARG;
}

const char *aliyun_auth_strerror(aliyun_auth_status_t status)
{
    switch (status) {
    case ALIYUN_AUTH_OK:
        return "ok";
    case ALIYUN_AUTH_ERR_ARG:
        return "invalid argument";
    case ALIYUN_AUTH_ERR_EMPTY:
        return "empty";
    case ALIYUN_AUTH_ERR_CHARSET:
        return "character not allowed";
    case ALIYUN_AUTH_ERR_TOO_LONG:
        return "too long";
    case ALIYUN_AUTH_ERR_TOO_SHORT:
        return "too short";
    case ALIYUN_AUTH_ERR_BUFFER:
        return "output buffer too small";
    case ALIYUN_AUTH_ERR_CRYPTO:
        return "digest failed";
    }
    return "unknown status";
}
