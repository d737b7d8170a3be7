/*
 * The MQTT client id an Aliyun device sends: "<id>|securemode=2,signmethod=hmacsha1,timestamp=789|".
 * Source: Aliyun IoT Platform docs, "MQTT-TCP connection", mqttClientId; extra keys (e.g. _v, lan) are allowed
 * and ignored, as the platform ignores them.
 */
#ifndef CLIENT_ID_H
#define CLIENT_ID_H

#include <stdbool.h>

#include "aliyun_auth.h"

typedef enum {
    CLIENT_ID_OK = 0,
    CLIENT_ID_ERR_NO_EXTENSION,   /* no "|...|" part */
    CLIENT_ID_ERR_EMPTY,          /* the id before '|' is empty */
    CLIENT_ID_ERR_TOO_LONG,       /* the id before '|' is over 64 characters */
    CLIENT_ID_ERR_SECUREMODE,     /* securemode missing or not an integer */
    CLIENT_ID_ERR_SIGNMETHOD,     /* signmethod missing or not hmacmd5/hmacsha1/hmacsha256 */
    CLIENT_ID_ERR_TIMESTAMP,      /* timestamp present but not 1..20 decimal digits */
    CLIENT_ID_ERR_SYNTAX,         /* anything else: a key without '=', text after the closing '|' */
} client_id_status_t;

typedef struct {
    char id[ALIYUN_AUTH_CLIENT_ID_MAX + 1];
    int secure_mode;
    aliyun_sign_method_t sign_method;
    bool has_timestamp;
    char timestamp[ALIYUN_AUTH_TIMESTAMP_MAX + 1];
    bool server_subscribe; /* "_ss=1": the platform subscribes the device to its system topics */
} client_id_t;

client_id_status_t client_id_parse(const char *text, client_id_t *out);

/* A phrase for the broker log. */
const char *client_id_strerror(client_id_status_t status);

#endif
