/*
 * `_ss=1` in the client id: the platform subscribes the device to its downstream system topics itself, and
 * Alibaba's SDKs then send no SUBSCRIBE for them (aliyun-iot-linkkit 1.2.13, Link SDK C 4.x; issue 10).
 * Mosquitto 2.0's plugin API cannot add a subscription, so the plugin delivers each message on such a topic
 * to the connection itself (mosquitto_broker_publish_copy to its client id, QoS 1) unless the connection
 * subscribed a filter matching it (its SUBSCRIBE ACL checks are noted here), which would deliver it twice.
 * One table per process, used on Mosquitto's main thread only.
 */
#ifndef SERVER_SUBS_H
#define SERVER_SUBS_H

#include <stdbool.h>

/* The device's downstream system topics: /sys/{pk}/{dn}/thing/service/..., every .../_reply under /sys/{pk}/{dn}/
 * (as ..._reply as the last level), /sys/{pk}/{dn}/rrpc/request/+, /ext/ntp/{pk}/{dn}/response,
 * /ota/device/upgrade/{pk}/{dn}, /shadow/get/{pk}/{dn}, /broadcast/{pk}/... */
bool server_subs_topic_for_device(const char *product_key, const char *device_name, const char *topic);

/* Registers a `_ss=1` connection; false when out of memory. */
bool server_subs_add(const void *connection, const char *mqtt_client_id, const char *product_key,
                     const char *device_name);

void server_subs_remove(const void *connection);

/* The connection subscribed (or unsubscribed) filter; nothing for an unregistered connection. */
void server_subs_note_subscribe(const void *connection, const char *filter);
void server_subs_note_unsubscribe(const void *connection, const char *filter);

/* Calls deliver(mqtt_client_id, context) for each registered connection topic is for that did not
 * subscribe a matching filter. */
void server_subs_targets(const char *topic, void (*deliver)(const char *mqtt_client_id, void *context),
                         void *context);

void server_subs_clear(void);

#endif
