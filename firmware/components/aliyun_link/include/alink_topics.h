/*
 * Topic names of the thing model and the custom setled topic, and MQTT topic-filter matching.
 * Topics: Aliyun IoT Platform "What is a topic" / Alink protocol documentation:
 *   /sys/{pk}/{dn}/thing/event/property/post (+ _reply)
 *   /sys/{pk}/{dn}/thing/service/property/set (+ _reply)
 *   /{pk}/{dn}/user/setled   (a custom topic this product defines)
 *   /sys/{pk}/{dn}/thing/service/{id} -> {id}_reply; /sys/{pk}/{dn}/rrpc/request/{messageId} ->
 *   /sys/{pk}/{dn}/rrpc/response/{messageId} (Alink protocol: "Invoke services", "RRPC")
 */
#ifndef ALINK_TOPICS_H
#define ALINK_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#include "alink_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ALINK_TOPIC_SIZE 160u /* longest topic here with a 64-char pk and a 32-char dn, NUL included */

typedef enum {
    ALINK_TOPIC_PROPERTY_POST = 0,
    ALINK_TOPIC_PROPERTY_POST_REPLY,
    ALINK_TOPIC_PROPERTY_SET,
    ALINK_TOPIC_PROPERTY_SET_REPLY,
    ALINK_TOPIC_USER_SETLED,
    ALINK_TOPIC_SERVICE,      /* filter /sys/{pk}/{dn}/thing/service/+ : async services of the thing model */
    ALINK_TOPIC_RRPC_REQUEST, /* filter /sys/{pk}/{dn}/rrpc/request/+ : sync services (RRPC) */
    ALINK_TOPIC_COUNT,
} alink_topic_t;

/* Writes the topic into out (out_size bytes with the NUL). ALINK_ERR_BUFFER if it does not fit. */
alink_status_t alink_topic_build(alink_topic_t topic, const char *product_key, const char *device_name,
                                 char *out, size_t out_size);

/*
 * Whether `topic` (topic_len bytes, no NUL needed) matches the NUL-terminated filter, with MQTT
 * 3.1.1 wildcards (section 4.7): "+" one level, "#" last and the rest including the parent level.
 * Topics starting with "$" do not match filters starting with a wildcard (4.7.2). A topic holding
 * a wildcard or a NUL never matches.
 */
bool alink_topic_matches(const char *filter, const char *topic, size_t topic_len);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_TOPICS_H */
