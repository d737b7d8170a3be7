/* Signing for Alibaba Cloud IoT Platform MQTT CONNECT: the HMAC and the credential strings.
 * Field validation, names and messages live in aliyun_auth_check.c. Rules: see aliyun_auth.h. */
#include "aliyun_auth.h"

#include <stdio.h>
#include <string.h>

/* Longest signed content of a valid request: the four names plus the four fields at their limits. */
#define CONTENT_MAX (8u + 10u + 10u + 9u + ALIYUN_AUTH_CLIENT_ID_MAX + ALIYUN_AUTH_DEVICE_NAME_MAX + \
                     ALIYUN_AUTH_PRODUCT_KEY_MAX + ALIYUN_AUTH_TIMESTAMP_MAX)

/* The outputs aliyun_auth_sign() writes without a length check: validated fields always fit. */
_Static_assert(ALIYUN_AUTH_CLIENT_ID_MAX + sizeof "|securemode=3,signmethod=hmacsha256,timestamp=" +
                       ALIYUN_AUTH_TIMESTAMP_MAX + 1u <=
                   ALIYUN_AUTH_MQTT_CLIENT_ID_SIZE,
               "the MQTT client id buffer holds the longest valid client id");
_Static_assert(ALIYUN_AUTH_DEVICE_NAME_MAX + 1u + ALIYUN_AUTH_PRODUCT_KEY_MAX + 1u <= ALIYUN_AUTH_USERNAME_SIZE,
               "the username buffer holds the longest valid username");

aliyun_auth_status_t aliyun_auth_password(aliyun_sign_method_t method, const char *device_secret,
                                          const char *client_id, const char *device_name,
                                          const char *product_key, const char *timestamp, char *out,
                                          size_t out_size)
{
    /* the signed content, then (the provider reads it before writing) the MAC */
    unsigned char text[CONTENT_MAX + 1u];
    const unsigned char *mac = text;
    static const unsigned char sizes[] = {16, 20, 32}; /* MD5, SHA-1, SHA-256 */

    if (!device_secret || !client_id || !device_name || !product_key || !out || (unsigned)method > 2u) {
        return ALIYUN_AUTH_ERR_ARG;
    }
    size_t n = sizes[method];
    int text_len = snprintf((char *)text, sizeof text, "clientId%sdeviceName%sproductKey%s%s%s", client_id, device_name,
                            product_key, timestamp ? "timestamp" : "", timestamp ? timestamp : "");
    aliyun_auth_status_t st = ALIYUN_AUTH_ERR_BUFFER;
    if (text_len >= 0 && (size_t)text_len < sizeof text && out_size > 2u * n) {
        st = aliyun_auth_hash.hmac(method, (const unsigned char *)device_secret, strlen(device_secret),
                                   text, (size_t)text_len, text)
                 ? ALIYUN_AUTH_ERR_CRYPTO
                 : ALIYUN_AUTH_OK;
    }
    for (size_t i = 0; st == ALIYUN_AUTH_OK && i < n; i++) {
        out[2u * i] = "0123456789ABCDEF"[mac[i] >> 4];
        out[2u * i + 1u] = "0123456789ABCDEF"[mac[i] & 15u];
        out[2u * i + 2u] = '\0';
    }
    /* the MAC is the password: no copy of it stays on the stack (volatile: the store is not dropped) */
    for (volatile unsigned char *v = text; v < text + n; v++) {
        *v = 0;
    }
    return st;
}

aliyun_auth_status_t aliyun_auth_sign(const aliyun_auth_request_t *r, aliyun_auth_credentials_t *out,
                                      aliyun_auth_field_t *bad_field)
{
    aliyun_auth_status_t st = aliyun_auth_validate(r, bad_field);
    if (!out) {
        return ALIYUN_AUTH_ERR_ARG;
    }
    if (st == ALIYUN_AUTH_OK) {
        const char *ts = r->timestamp;
        int legacy = !r->endpoint || !*r->endpoint;
        /* Validated fields are bounded so that these two fit (see the asserts above). */
        (void)snprintf(out->client_id, sizeof out->client_id, "%s|securemode=%d,signmethod=%s%s%s|", r->client_id,
                       r->secure_mode, aliyun_sign_method_name(r->sign_method), ts ? ",timestamp=" : "",
                       ts ? ts : "");
        (void)snprintf(out->username, sizeof out->username, "%s&%s", r->device_name, r->product_key);
        int host = snprintf(out->host, sizeof out->host, legacy ? "%s.iot-as-mqtt.%s.aliyuncs.com" : "%s",
                            legacy ? r->product_key : r->endpoint, r->region);
        out->port = (uint16_t)(r->secure_mode == 2 ? 8883u : 1883u);
        st = (size_t)host >= sizeof out->host ? ALIYUN_AUTH_ERR_BUFFER
                                              : aliyun_auth_password(r->sign_method, r->device_secret, r->client_id,
                                                                     r->device_name, r->product_key, ts,
                                                                     out->password, sizeof out->password);
    }
    if (st != ALIYUN_AUTH_OK) {
        memset(out, 0, sizeof *out); /* nothing half-done (or secret-derived) is left behind */
    }
    return st;
}
