#include "alink_topics.h"

#include <stdio.h>
#include <string.h>

alink_status_t alink_topic_build(alink_topic_t topic, const char *product_key, const char *device_name,
                                 char *out, size_t out_size)
{
    static const char *const formats[ALINK_TOPIC_COUNT] = {
        [ALINK_TOPIC_PROPERTY_POST] = "/sys/%s/%s/thing/event/property/post",
        [ALINK_TOPIC_PROPERTY_POST_REPLY] = "/sys/%s/%s/thing/event/property/post_reply",
        [ALINK_TOPIC_PROPERTY_SET] = "/sys/%s/%s/thing/service/property/set",
        [ALINK_TOPIC_PROPERTY_SET_REPLY] = "/sys/%s/%s/thing/service/property/set_reply",
        [ALINK_TOPIC_USER_SETLED] = "/%s/%s/user/setled",
        [ALINK_TOPIC_SERVICE] = "/sys/%s/%s/thing/service/+",
        [ALINK_TOPIC_RRPC_REQUEST] = "/sys/%s/%s/rrpc/request/+",
    };
    if (!product_key || !device_name || !out || out_size == 0 || (unsigned)topic >= ALINK_TOPIC_COUNT) {
        return ALINK_ERR_ARG;
    }
    int n = snprintf(out, out_size, formats[topic], product_key, device_name);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return ALINK_ERR_BUFFER;
    }
    return ALINK_OK;
}

bool alink_topic_matches(const char *filter, const char *topic, size_t topic_len)
{
    size_t t = 0;
    if (!filter || !topic || !*filter) {
        return false;
    }
    for (size_t i = 0; i < topic_len; i++) {
        if (topic[i] == '+' || topic[i] == '#' || topic[i] == '\0') {
            return false;
        }
    }
    if (topic_len > 0 && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return false;
    }
    for (const char *f = filter;; f++) {
        if (*f == '#') {
            /* "#" must be the whole last level; it also matches the parent level itself */
            return f[1] == '\0' && (f == filter || f[-1] == '/');
        }
        if (*f == '+') {
            if ((f != filter && f[-1] != '/') || (f[1] != '\0' && f[1] != '/')) {
                return false;
            }
            while (t < topic_len && topic[t] != '/') {
                t++;
            }
            continue;
        }
        if (*f == '\0') {
            return t == topic_len;
        }
        if (t == topic_len) {
            /* "a/#" matches "a": the filter has only "/#" left */
            return f[0] == '/' && f[1] == '#' && f[2] == '\0';
        }
        if (*f != topic[t]) {
            return false;
        }
        t++;
    }
}
