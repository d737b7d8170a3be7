#include "alink_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cJSON.h"

static alink_status_t finish(int n, char *out, size_t out_size, size_t *len)
{
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return ALINK_ERR_BUFFER;
    }
    if (len) {
        *len = (size_t)n;
    }
    return ALINK_OK;
}

alink_status_t alink_json_property_post(uint32_t id, const alink_properties_t *props, char *out, size_t out_size,
                                        size_t *len)
{
    if (!props || !out || out_size == 0) {
        return ALINK_ERR_ARG;
    }
    int n = snprintf(out, out_size,
                     "{\"id\":\"%" PRIu32 "\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":%d,\"RSSI\":%d,"
                     "\"FreeHeap\":%" PRIu32 "},\"method\":\"thing.event.property.post\"}",
                     id, props->light_switch ? 1 : 0, props->rssi_dbm, props->free_heap_bytes);
    return finish(n, out, out_size, len);
}

static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= ALINK_ID_MAX && id[strspn(id, "0123456789")] == '\0';
}

alink_status_t alink_json_reply(const char *id, int code, char *out, size_t out_size, size_t *len)
{
    if (!id || !out || out_size == 0) {
        return ALINK_ERR_ARG;
    }
    if (!id_valid(id)) {
        return ALINK_ERR_BAD_ID; /* an id is echoed into JSON: only digits may pass */
    }
    int n = snprintf(out, out_size, "{\"id\":\"%s\",\"code\":%d,\"data\":{},\"message\":\"%s\",\"version\":\"1.0\"}",
                     id, code, code == ALINK_CODE_OK ? "success" : "request parameter error");
    return finish(n, out, out_size, len);
}

/* cJSON recurses once per nesting level: bound the depth before parsing so that a payload of max_len
 * brackets cannot overflow a small task stack. Brackets inside strings do not count. */
alink_status_t alink_json_check_shape(const char *payload, size_t len, size_t max_len, unsigned max_depth)
{
    unsigned depth = 0;
    bool in_string = false;
    if (len > max_len) {
        return ALINK_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < len; i++) {
        char c = payload[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                return ALINK_ERR_NESTING;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return ALINK_OK;
}

static alink_status_t parse_object(const char *payload, size_t len, cJSON **root)
{
    *root = NULL;
    if (!payload) {
        return ALINK_ERR_ARG;
    }
    alink_status_t st = alink_json_check_shape(payload, len, ALINK_INBOUND_MAX, ALINK_JSON_DEPTH_MAX);
    if (st != ALINK_OK) {
        return st;
    }
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
    /* one object and nothing after it but whitespace */
    while (*root && end < payload + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) {
        end++;
    }
    if (!*root || !cJSON_IsObject(*root) || end != payload + len) {
        cJSON_Delete(*root);
        *root = NULL;
        return ALINK_ERR_NOT_JSON;
    }
    return ALINK_OK;
}

/* A JSON number that is exactly 0 or 1. */
static bool read_bit(const cJSON *item, bool *bit)
{
    if (!cJSON_IsNumber(item) || (item->valuedouble != 0.0 && item->valuedouble != 1.0)) {
        return false;
    }
    *bit = item->valuedouble == 1.0;
    return true;
}

alink_status_t alink_json_parse_property_set(const char *payload, size_t len, alink_property_set_t *out)
{
    cJSON *root;
    if (!out) {
        return ALINK_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    alink_status_t st = parse_object(payload, len, &root);
    if (st != ALINK_OK) {
        return st;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (!id) {
        st = ALINK_ERR_NO_ID;
    } else if (!cJSON_IsString(id) || !id_valid(id->valuestring)) {
        st = ALINK_ERR_BAD_ID;
    } else {
        memcpy(out->id, id->valuestring, strlen(id->valuestring) + 1);
        if (!cJSON_IsObject(params)) {
            st = ALINK_ERR_NO_PARAMS;
        } else {
            const cJSON *light = cJSON_GetObjectItemCaseSensitive(params, "LightSwitch");
            out->has_light_switch = light != NULL;
            if (light && !read_bit(light, &out->light_switch)) {
                st = ALINK_ERR_BAD_VALUE;
            }
        }
    }
    cJSON_Delete(root);
    return st;
}

alink_status_t alink_json_parse_setled(const char *payload, size_t len, alink_setled_t *out)
{
    cJSON *root;
    if (!out) {
        return ALINK_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    alink_status_t st = parse_object(payload, len, &root);
    if (st != ALINK_OK) {
        return st;
    }
    const cJSON *dn = cJSON_GetObjectItemCaseSensitive(root, "dn");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "s");
    if (!cJSON_IsString(dn) || strlen(dn->valuestring) >= sizeof out->device_name) {
        st = ALINK_ERR_NO_DN;
    } else if (!read_bit(s, &out->on)) {
        st = ALINK_ERR_BAD_SWITCH;
    } else {
        memcpy(out->device_name, dn->valuestring, strlen(dn->valuestring) + 1);
    }
    cJSON_Delete(root);
    return st;
}
