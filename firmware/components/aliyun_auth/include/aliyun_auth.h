/*
 * aliyun_auth: the MQTT CONNECT parameters (client id with its extension, username, password, host,
 * port) for one device of Alibaba Cloud IoT Platform, from its triple.
 *
 * Pure C99, bound to no crypto library: the HMAC comes from the table aliyun_auth_hash, which the
 * build links in from a provider (components/aliyun_hash: RFC 2104 over Mbed TLS 2.28/3.x one-shot
 * digests, or over PSA Crypto on Mbed TLS 4 / ESP-IDF v6). No ESP-IDF include and no heap.
 * Every output goes to a caller-owned buffer of a stated size; what does not fit is an error
 * (ALIYUN_AUTH_ERR_BUFFER), never an overflow.
 *
 * Signing rules (Aliyun, "Establish MQTT connections over TCP", MQTT CONNECT parameters):
 *   content  = "clientId" cid "deviceName" dn "productKey" pk ["timestamp" ts]  (sorted by name; a
 *              parameter that is not sent is left out)
 *   password = upper-case hex of HMAC-<method>(DeviceSecret, content)
 *   client id = cid "|securemode=" mode ",signmethod=" method [",timestamp=" ts] "|"
 *   username = dn "&" pk
 *   host     = endpoint, or pk ".iot-as-mqtt." region ".aliyuncs.com"; port 8883 (mode 2) / 1883 (mode 3)
 */
#ifndef ALIYUN_AUTH_H
#define ALIYUN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Field limits. Client id: Aliyun allows at most 64 characters. The others are generous bounds on
 * what Aliyun issues (ProductKey 11, DeviceSecret 32 characters). */
#define ALIYUN_AUTH_CLIENT_ID_MAX 64u
#define ALIYUN_AUTH_PRODUCT_KEY_MAX 64u
#define ALIYUN_AUTH_DEVICE_NAME_MIN 4u /* Aliyun: DeviceName is 4..32 characters */
#define ALIYUN_AUTH_DEVICE_NAME_MAX 32u
#define ALIYUN_AUTH_DEVICE_SECRET_MAX 128u
#define ALIYUN_AUTH_TIMESTAMP_MAX 20u /* decimal digits of a uint64 */

/* Output sizes, NUL included. */
#define ALIYUN_AUTH_MQTT_CLIENT_ID_SIZE 144u /* 64 + "|securemode=3,signmethod=hmacsha256,timestamp=" + 20 + "|" */
#define ALIYUN_AUTH_USERNAME_SIZE (ALIYUN_AUTH_DEVICE_NAME_MAX + 1u + ALIYUN_AUTH_PRODUCT_KEY_MAX + 1u)
#define ALIYUN_AUTH_PASSWORD_SIZE 65u /* 32-byte SHA-256 MAC as hex + NUL */
#define ALIYUN_AUTH_HOST_SIZE 128u

typedef enum {
    ALIYUN_AUTH_OK = 0,
    ALIYUN_AUTH_ERR_ARG,           /* NULL pointer, unknown sign method or secure mode */
    ALIYUN_AUTH_ERR_EMPTY,         /* a required field is empty */
    ALIYUN_AUTH_ERR_CHARSET,       /* a field holds a character the broker would reject */
    ALIYUN_AUTH_ERR_TOO_LONG,      /* a field is over its limit (client id: 64 characters) */
    ALIYUN_AUTH_ERR_TOO_SHORT,     /* a DeviceName under 4 characters */
    ALIYUN_AUTH_ERR_BUFFER,        /* an output would not fit its buffer (nothing is cut short) */
    ALIYUN_AUTH_ERR_CRYPTO,        /* the digest provider failed */
} aliyun_auth_status_t;

typedef enum {
    ALIYUN_SIGN_HMACMD5 = 0,
    ALIYUN_SIGN_HMACSHA1 = 1,
    ALIYUN_SIGN_HMACSHA256 = 2,
} aliyun_sign_method_t;

/*
 * The keyed hash signing needs, provided by the shell's build (one provider linked per image).
 * hmac: HMAC (RFC 2104) with the method's hash, MD5 (16 bytes), SHA-1 (20) or SHA-256 (32), of
 * msg[0..msg_len) under key[0..key_len) into mac, which may overlap msg (read msg first); 0 on success.
 * It must not allocate (signing makes no heap allocation) nor keep any data.
 */
typedef struct {
    int (*hmac)(aliyun_sign_method_t method, const unsigned char *key, size_t key_len, const unsigned char *msg,
                size_t msg_len, unsigned char *mac);
} aliyun_auth_hash_t;

extern const aliyun_auth_hash_t aliyun_auth_hash;

/* Which field a validation error is about (for a precise message). */
typedef enum {
    ALIYUN_FIELD_NONE = 0,
    ALIYUN_FIELD_PRODUCT_KEY,
    ALIYUN_FIELD_DEVICE_NAME,
    ALIYUN_FIELD_DEVICE_SECRET,
    ALIYUN_FIELD_CLIENT_ID,
    ALIYUN_FIELD_TIMESTAMP,
    ALIYUN_FIELD_REGION,
    ALIYUN_FIELD_ENDPOINT,
} aliyun_auth_field_t;

typedef struct {
    const char *product_key;
    const char *device_name;
    const char *device_secret;
    const char *client_id;  /* the bare id (e.g. a MAC or the DeviceName), without extension */
    const char *timestamp;  /* decimal milliseconds since the epoch; NULL: not sent, not signed */
    aliyun_sign_method_t sign_method;
    int secure_mode;        /* 2: TLS on 8883, 3: plain TCP on 1883 */
    const char *region;     /* e.g. "cn-shanghai"; used when endpoint is NULL */
    const char *endpoint;   /* instance endpoint overriding the legacy host; NULL or "" for legacy */
} aliyun_auth_request_t;

typedef struct {
    char client_id[ALIYUN_AUTH_MQTT_CLIENT_ID_SIZE];
    char username[ALIYUN_AUTH_USERNAME_SIZE];
    char password[ALIYUN_AUTH_PASSWORD_SIZE];
    char host[ALIYUN_AUTH_HOST_SIZE];
    uint16_t port;
} aliyun_auth_credentials_t;

/*
 * Checks what the platform refuses: NULL request, unknown method or secure mode (ERR_ARG); an empty
 * field; characters outside the field's alphabet (ProductKey and DeviceSecret: printable ASCII but
 * space; DeviceName: letters, digits and "-_@.:"; client id: anything but "|" and control characters,
 * so "pk.dn" and "pk&dn" as Alibaba's SDKs use them pass; timestamp: digits; region: letters, digits,
 * "-" and "."; endpoint: the same and ":", so a host name, an IPv4 or IPv6 address or localhost); a
 * field over its limit (client id: 64 bytes); a DeviceName under 4 characters.
 * The same rules as `provision sign` (provision/signing.py), which is stricter on region and endpoint
 * syntax. Fields are checked in the order product key, device name, secret, client id, timestamp,
 * region (when legacy, or when given), endpoint (when given), and the first
 * bad one is reported in *bad_field (if not NULL; NONE when all are good or the error is ERR_ARG).
 */
aliyun_auth_status_t aliyun_auth_validate(const aliyun_auth_request_t *request, aliyun_auth_field_t *bad_field);

/*
 * Validates the request (aliyun_auth_validate) and fills *out. On any error *out holds no secret-derived data.
 * If bad_field is not NULL it receives the field a validation error is about (NONE otherwise).
 */
aliyun_auth_status_t aliyun_auth_sign(const aliyun_auth_request_t *request, aliyun_auth_credentials_t *out,
                                      aliyun_auth_field_t *bad_field);

/*
 * The password alone: upper-case hex HMAC over the content above, into out (out_size bytes, NUL
 * included). No validation of the fields beyond NULL checks (a broker-side verifier uses this on
 * whatever the client sent). timestamp NULL: not part of the content.
 */
aliyun_auth_status_t aliyun_auth_password(aliyun_sign_method_t method, const char *device_secret,
                                          const char *client_id, const char *device_name,
                                          const char *product_key, const char *timestamp, char *out,
                                          size_t out_size);

/* "hmacmd5" / "hmacsha1" / "hmacsha256"; NULL for an unknown value. */
const char *aliyun_sign_method_name(aliyun_sign_method_t method);

/* Parses a method name; returns ALIYUN_AUTH_ERR_ARG when it is none of the three. */
aliyun_auth_status_t aliyun_sign_method_parse(const char *name, aliyun_sign_method_t *method);

/* A short English phrase for a status, for logs. */
const char *aliyun_auth_strerror(aliyun_auth_status_t status);

#ifdef __cplusplus
}
#endif

#endif /* ALIYUN_AUTH_H */
