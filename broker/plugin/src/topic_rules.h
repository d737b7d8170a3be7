/*
 * Which topics a device may use, and MQTT topic-filter matching for forwarding rules.
 * A device (ProductKey pk, DeviceName dn) may publish and subscribe only under
 *     /sys/{pk}/{dn}/...          thing model (Aliyun "Topics": system topics)
 *     /{pk}/{dn}/...              custom topics (e.g. /{pk}/{dn}/user/get)
 *     /ext/<one or more levels>/{pk}/{dn}/...   extension topics (ntp, session, rrpc, ...)
 */
#ifndef TOPIC_RULES_H
#define TOPIC_RULES_H

#include <stdbool.h>

bool topic_allowed_for_device(const char *product_key, const char *device_name, const char *topic);

/* MQTT 3.1.1 section 4.7: '+' matches one level, a trailing '#' matches the parent and every level below. */
bool topic_filter_matches(const char *filter, const char *topic);

#endif
