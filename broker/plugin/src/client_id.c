#include "client_id.h"

#include <stdlib.h>
#include <string.h>

static bool all_digits(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static bool key_is(const char *key, size_t key_len, const char *name)
{
    return strlen(name) == key_len && memcmp(key, name, key_len) == 0;
}

static client_id_status_t parse_pair(const char *pair, size_t len, client_id_t *out, bool *seen_mode,
                                     bool *seen_method)
{
    const char *eq = memchr(pair, '=', len);
    if (eq == NULL) {
        return CLIENT_ID_ERR_SYNTAX;
    }
    size_t key_len = (size_t)(eq - pair);
    const char *value = eq + 1;
    size_t value_len = len - key_len - 1;
    char buf[32];

    if (key_is(pair, key_len, "securemode")) {
        /* -2 is the pre-registration-free mode; kept parseable so the refusal names the mode */
        const char *digits = value;
        size_t digits_len = value_len;
        if (digits_len > 0 && digits[0] == '-') {
            digits++;
            digits_len--;
        }
        if (!all_digits(digits, digits_len) || digits_len > 3) {
            return CLIENT_ID_ERR_SECUREMODE;
        }
        memcpy(buf, value, value_len);
        buf[value_len] = '\0';
        out->secure_mode = atoi(buf);
        *seen_mode = true;
    } else if (key_is(pair, key_len, "signmethod")) {
        if (value_len >= sizeof buf) {
            return CLIENT_ID_ERR_SIGNMETHOD;
        }
        memcpy(buf, value, value_len);
        buf[value_len] = '\0';
        if (aliyun_sign_method_parse(buf, &out->sign_method) != ALIYUN_AUTH_OK) {
            return CLIENT_ID_ERR_SIGNMETHOD;
        }
        *seen_method = true;
    } else if (key_is(pair, key_len, "timestamp")) {
        if (!all_digits(value, value_len) || value_len > ALIYUN_AUTH_TIMESTAMP_MAX) {
            return CLIENT_ID_ERR_TIMESTAMP;
        }
        memcpy(out->timestamp, value, value_len);
        out->timestamp[value_len] = '\0';
        out->has_timestamp = true;
    } else if (key_is(pair, key_len, "_ss")) {
        out->server_subscribe = value_len == 1 && value[0] == '1';
    }
    return CLIENT_ID_OK;
}

client_id_status_t client_id_parse(const char *text, client_id_t *out)
{
    if (text == NULL || out == NULL) {
        return CLIENT_ID_ERR_SYNTAX;
    }
    memset(out, 0, sizeof *out);
    const char *open = strchr(text, '|');
    if (open == NULL) {
        return CLIENT_ID_ERR_NO_EXTENSION;
    }
    size_t id_len = (size_t)(open - text);
    if (id_len == 0) {
        return CLIENT_ID_ERR_EMPTY;
    }
    if (id_len > ALIYUN_AUTH_CLIENT_ID_MAX) {
        return CLIENT_ID_ERR_TOO_LONG;
    }
    const char *close = strchr(open + 1, '|');
    if (close == NULL || close[1] != '\0') {
        return CLIENT_ID_ERR_SYNTAX;
    }
    memcpy(out->id, text, id_len);
    out->id[id_len] = '\0';

    bool seen_mode = false;
    bool seen_method = false;
    const char *pair = open + 1;
    while (pair < close) {
        const char *comma = memchr(pair, ',', (size_t)(close - pair));
        const char *end = comma != NULL ? comma : close;
        client_id_status_t status = parse_pair(pair, (size_t)(end - pair), out, &seen_mode, &seen_method);
        if (status != CLIENT_ID_OK) {
            return status;
        }
        pair = end + 1;
    }
    if (!seen_mode) {
        return CLIENT_ID_ERR_SECUREMODE;
    }
    if (!seen_method) {
        return CLIENT_ID_ERR_SIGNMETHOD;
    }
    return CLIENT_ID_OK;
}

const char *client_id_strerror(client_id_status_t status)
{
    switch (status) {
    case CLIENT_ID_OK:
        return "ok";
    case CLIENT_ID_ERR_NO_EXTENSION:
        return "client id has no |securemode=..,signmethod=..| extension";
    case CLIENT_ID_ERR_EMPTY:
        return "client id is empty";
    case CLIENT_ID_ERR_TOO_LONG:
        return "client id is over 64 characters";
    case CLIENT_ID_ERR_SECUREMODE:
        return "securemode missing or not a number";
    case CLIENT_ID_ERR_SIGNMETHOD:
        return "signmethod missing or not hmacmd5/hmacsha1/hmacsha256";
    case CLIENT_ID_ERR_TIMESTAMP:
        return "timestamp is not a decimal number of at most 20 digits";
    case CLIENT_ID_ERR_SYNTAX:
        return "client id extension is malformed";
    }
    return "unknown client id status";
}
