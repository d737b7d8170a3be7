/*
 * Which topics a device may use, and MQTT topic-filter matching for forwarding rules.
 * A device (ProductKey pk, DeviceName dn) may publish and subscribe under
 *     /sys/{pk}/{dn}/...          thing model, RRPC (Aliyun "Topics": system topics)
 *     /{pk}/{dn}/...              custom topics (e.g. /{pk}/{dn}/user/get)
 *     /ext/<one or more levels>/{pk}/{dn}/...   extension topics (ntp, session, rrpc, ...)
 * and, in one direction only (Aliyun docs "OTA update", "Device shadow", "Broadcast"; issue 10):
 *     up (publish):      /ota/device/inform/{pk}/{dn}, /ota/device/progress/{pk}/{dn}, /shadow/update/{pk}/{dn}
 *     down (subscribe):  /ota/device/upgrade/{pk}/{dn}, /shadow/get/{pk}/{dn}, /broadcast/{pk}/...
 */
#ifndef TOPIC_RULES_H
#define TOPIC_RULES_H

#include <stdbool.h>

typedef enum {
    TOPIC_UP = 0,   /* the device publishes */
    TOPIC_DOWN = 1, /* the device subscribes or receives */
} topic_direction_t;

bool topic_allowed_for_device(const char *product_key, const char *device_name, const char *topic,
                              topic_direction_t direction);

/* ProductKey: letters and digits only (the platform's keys; '/', '+', '#', '&' would break topics). */
bool product_key_valid(const char *product_key);

/* DeviceName: A-Za-z0-9 and -_@.: (Aliyun "Create a device": the DeviceName character set). */
bool device_name_valid(const char *device_name);

/* MQTT 3.1.1 section 4.7: '+' matches one level, a trailing '#' matches the parent and every level below. */
bool topic_filter_matches(const char *filter, const char *topic);

#endif
