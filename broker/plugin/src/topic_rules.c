#include "topic_rules.h"

#include <string.h>

/* If topic starts with "<pk>/<dn>/" returns true. */
static bool starts_with_device(const char *topic, const char *pk, const char *dn)
{
    size_t pk_len = strlen(pk);
    size_t dn_len = strlen(dn);
    return strncmp(topic, pk, pk_len) == 0 && topic[pk_len] == '/' && strncmp(topic + pk_len + 1, dn, dn_len) == 0
           && topic[pk_len + 1 + dn_len] == '/';
}

bool topic_allowed_for_device(const char *product_key, const char *device_name, const char *topic)
{
    if (product_key == NULL || device_name == NULL || topic == NULL || product_key[0] == '\0'
        || device_name[0] == '\0') {
        return false;
    }
    if (strncmp(topic, "/sys/", 5) == 0 && starts_with_device(topic + 5, product_key, device_name)) {
        return true;
    }
    if (topic[0] == '/' && starts_with_device(topic + 1, product_key, device_name)) {
        return true;
    }
    if (strncmp(topic, "/ota/device/", 12) == 0) {
        /* Alibaba's OTA topics: /ota/device/{inform|upgrade|progress|...}/{pk}/{dn}, the device last */
        const char *kind_end = strchr(topic + 12, '/');
        size_t pk_len = strlen(product_key);
        if (kind_end != NULL && kind_end > topic + 12 && strncmp(kind_end + 1, product_key, pk_len) == 0
            && kind_end[1 + pk_len] == '/' && strcmp(kind_end + 2 + pk_len, device_name) == 0) {
            return true;
        }
    }
    if (strncmp(topic, "/ext/", 5) == 0) {
        /* at least one level after /ext/, then the device's two levels at some level boundary */
        const char *level = strchr(topic + 5, '/');
        while (level != NULL) {
            if (level > topic + 5 && starts_with_device(level + 1, product_key, device_name)) {
                return true;
            }
            level = strchr(level + 1, '/');
        }
    }
    return false;
}

bool topic_filter_matches(const char *filter, const char *topic)
{
    const char *f = filter;
    const char *t = topic;
    while (*f != '\0') {
        if (f[0] == '#' && f[1] == '\0') {
            return true;
        }
        if (f[0] == '+' && (f[1] == '/' || f[1] == '\0')) {
            while (*t != '\0' && *t != '/') {
                t++;
            }
            f++;
        } else {
            while (*f != '\0' && *f != '/') {
                if (*t != *f) {
                    return false;
                }
                f++;
                t++;
            }
            if (*t != '\0' && *t != '/') {
                return false;
            }
        }
        /* both at a separator or at the end */
        if (*f == '/') {
            if (*t != '/') {
                /* "a/#" also matches "a" */
                return *t == '\0' && f[1] == '#' && f[2] == '\0';
            }
            f++;
            t++;
        } else {
            return *t == '\0';
        }
    }
    return *t == '\0';
}
