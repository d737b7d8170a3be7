/* The upgrade message's parser and checks; the format is in alink_ota.h. */
#include "alink_ota.h"

#include <ctype.h>
#include <string.h>

#include "alink_json.h"
#include "cJSON.h"

/* The depth bound cJSON's recursion needs (alink_json_check_shape), with the larger size limit an upgrade
 * message needs, in this parser's verdicts. */
static alink_ota_verdict_t check_shape(const char *payload, size_t len)
{
    switch (alink_json_check_shape(payload, len, ALINK_OTA_MESSAGE_MAX, ALINK_JSON_DEPTH_MAX)) {
    case ALINK_OK:
        return ALINK_OTA_ACCEPTED;
    case ALINK_ERR_TOO_LARGE:
        return ALINK_OTA_TOO_LARGE;
    default:
        return ALINK_OTA_NESTING;
    }
}

static const char *string_field(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

bool alink_ota_version_valid(const char *version)
{
    size_t n = version ? strlen(version) : 0;
    if (n == 0 || n > ALINK_OTA_VERSION_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)version[i];
        /* the version is echoed into JSON and log lines: no quoting needed if these never pass */
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

static bool url_valid(const char *url)
{
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n > ALINK_OTA_URL_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

static bool is_https(const char *url)
{
    static const char scheme[] = "https://";
    for (size_t i = 0; i < sizeof scheme - 1u; i++) {
        if (tolower((unsigned char)url[i]) != scheme[i]) {
            return false;
        }
    }
    return url[sizeof scheme - 1u] != '\0' && url[sizeof scheme - 1u] != '/';
}

static alink_ota_verdict_t parse_sign(const cJSON *data, alink_ota_upgrade_t *job)
{
    const char *method = string_field(data, "signMethod");
    const char *sign = string_field(data, "sign");
    size_t want = 0;
    if (method && strcmp(method, "SHA256") == 0) {
        job->sign_method = ALINK_OTA_SIGN_SHA256;
        want = 64;
    } else if (method && strcmp(method, "Md5") == 0) {
        job->sign_method = ALINK_OTA_SIGN_MD5;
        want = 32;
    } else {
        return ALINK_OTA_BAD_SIGN_METHOD;
    }
    if (!sign || strlen(sign) != want || sign[strspn(sign, "0123456789abcdefABCDEF")] != '\0') {
        return ALINK_OTA_BAD_SIGN;
    }
    for (size_t i = 0; i <= want; i++) {
        job->sign[i] = (char)tolower((unsigned char)sign[i]);
    }
    return ALINK_OTA_ACCEPTED;
}

static alink_ota_verdict_t parse_data(const cJSON *data, alink_ota_upgrade_t *job)
{
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(data, "size");
    if (!cJSON_IsNumber(size) || size->valuedouble < 1.0 || size->valuedouble > (double)UINT32_MAX ||
        size->valuedouble != (double)(uint32_t)size->valuedouble) {
        return ALINK_OTA_BAD_SIZE;
    }
    job->size = (uint32_t)size->valuedouble;
    alink_ota_verdict_t v = parse_sign(data, job);
    if (v != ALINK_OTA_ACCEPTED) {
        return v;
    }
    const char *url = string_field(data, "url");
    if (!url_valid(url)) {
        return ALINK_OTA_BAD_URL;
    }
    if (!is_https(url)) {
        return ALINK_OTA_NOT_HTTPS;
    }
    const char *version = string_field(data, "version");
    if (!alink_ota_version_valid(version)) {
        return ALINK_OTA_BAD_VERSION;
    }
    const cJSON *module = cJSON_GetObjectItemCaseSensitive(data, "module");
    if (module && (!cJSON_IsString(module) || strcmp(module->valuestring, "default") != 0)) {
        return ALINK_OTA_BAD_MODULE;
    }
    memcpy(job->url, url, strlen(url) + 1u);
    memcpy(job->version, version, strlen(version) + 1u);
    return ALINK_OTA_ACCEPTED;
}

alink_ota_verdict_t alink_ota_parse_upgrade(const char *payload, size_t len, alink_ota_upgrade_t *out)
{
    alink_ota_upgrade_t job;
    if (!payload || !out) {
        return ALINK_OTA_NOT_JSON;
    }
    alink_ota_verdict_t v = check_shape(payload, len);
    if (v != ALINK_OTA_ACCEPTED) {
        return v;
    }
    memset(&job, 0, sizeof job);
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, NULL, 0);
    if (!root) {
        /* cJSON does not tell an allocation failure from bad JSON; a payload under the size limit
         * almost never exhausts the heap, so bad JSON is the honest guess */
        return ALINK_OTA_NOT_JSON;
    }
    const char *code = string_field(root, "code");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsObject(root)) {
        v = ALINK_OTA_NOT_JSON;
    } else if (!code || strcmp(code, "1000") != 0) {
        v = ALINK_OTA_BAD_CODE;
    } else if (!cJSON_IsObject(data)) {
        v = ALINK_OTA_NO_DATA;
    } else {
        v = parse_data(data, &job);
    }
    cJSON_Delete(root);
    if (v == ALINK_OTA_ACCEPTED) {
        *out = job;
    }
    return v;
}

const char *alink_ota_verdict_text(alink_ota_verdict_t verdict)
{
    switch (verdict) {
    case ALINK_OTA_ACCEPTED: return "accepted";
    case ALINK_OTA_TOO_LARGE: return "message too large";
    case ALINK_OTA_NOT_JSON: return "not JSON";
    case ALINK_OTA_NESTING: return "too deeply nested";
    case ALINK_OTA_BAD_CODE: return "code is not 1000";
    case ALINK_OTA_NO_DATA: return "no data";
    case ALINK_OTA_BAD_SIZE: return "bad size";
    case ALINK_OTA_BAD_SIGN_METHOD: return "unknown signMethod";
    case ALINK_OTA_BAD_SIGN: return "bad sign";
    case ALINK_OTA_BAD_URL: return "bad url";
    case ALINK_OTA_NOT_HTTPS: return "url is not https";
    case ALINK_OTA_BAD_VERSION: return "bad version";
    case ALINK_OTA_BAD_MODULE: return "unknown module";
    case ALINK_OTA_NO_SPACE: return "image larger than the slot";
    case ALINK_OTA_SAME_VERSION: return "already running this version";
    case ALINK_OTA_BUSY: return "an update is running";
    case ALINK_OTA_DISABLED: return "ota disabled";
    }
    return "unknown";
}
