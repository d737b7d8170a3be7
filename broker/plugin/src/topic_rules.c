#include "topic_rules.h"

#include <ctype.h>
#include <string.h>

/* If topic starts with "<pk>/<dn>/" returns true. */
static bool starts_with_device(const char *topic, const char *pk, const char *dn)
{
    size_t pk_len = strlen(pk);
    size_t dn_len = strlen(dn);
    return strncmp(topic, pk, pk_len) == 0 && topic[pk_len] == '/' && strncmp(topic + pk_len + 1, dn, dn_len) == 0
           && topic[pk_len + 1 + dn_len] == '/';
}

/* True when topic is exactly prefix followed by "{pk}/{dn}" and nothing else. */
static bool is_device_leaf(const char *topic, const char *prefix, const char *pk, const char *dn)
{
    size_t prefix_len = strlen(prefix);
    size_t pk_len = strlen(pk);
    if (strncmp(topic, prefix, prefix_len) != 0) {
        return false;
    }
    topic += prefix_len;
    return strncmp(topic, pk, pk_len) == 0 && topic[pk_len] == '/' && strcmp(topic + pk_len + 1, dn) == 0;
}

bool product_key_valid(const char *product_key)
{
    if (product_key == NULL || product_key[0] == '\0') {
        return false;
    }
    for (const char *c = product_key; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c)) {
            return false;
        }
    }
    return true;
}

bool device_name_valid(const char *device_name)
{
    if (device_name == NULL || device_name[0] == '\0') {
        return false;
    }
    for (const char *c = device_name; *c != '\0'; c++) {
        if (!isalnum((unsigned char)*c) && strchr("-_@.:", *c) == NULL) {
            return false;
        }
    }
    return true;
}

static bool one_way_topic_allowed(const char *pk, const char *dn, const char *topic, topic_direction_t direction)
{
    if (direction == TOPIC_UP) {
        return is_device_leaf(topic, "/ota/device/inform/", pk, dn) || is_device_leaf(topic, "/ota/device/progress/", pk, dn)
               || is_device_leaf(topic, "/shadow/update/", pk, dn);
    }
    if (is_device_leaf(topic, "/ota/device/upgrade/", pk, dn) || is_device_leaf(topic, "/shadow/get/", pk, dn)) {
        return true;
    }
    size_t pk_len = strlen(pk);
    return strncmp(topic, "/broadcast/", 11) == 0 && strncmp(topic + 11, pk, pk_len) == 0 && topic[11 + pk_len] == '/'
           && topic[12 + pk_len] != '\0';
}

bool topic_allowed_for_device(const char *product_key, const char *device_name, const char *topic,
                              topic_direction_t direction)
{
    if (topic == NULL || !product_key_valid(product_key) || !device_name_valid(device_name)) {
        return false;
    }
    if (one_way_topic_allowed(product_key, device_name, topic, direction)) {
        return true;
    }
    if (strncmp(topic, "/sys/", 5) == 0 && starts_with_device(topic + 5, product_key, device_name)) {
        return true;
    }
    if (topic[0] == '/' && starts_with_device(topic + 1, product_key, device_name)) {
        return true;
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
