/* esp-mqtt under the core's actions: one client for the device's life, no reconnects of its own. */
#pragma once

#include <stddef.h>

#include "aliyun_link.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ALINK_ACT_CONNECT: the first creates the client, later ones reconfigure and wake it; failures are posted
 * as MQTT_DISCONNECTED. */
void mqtt_link_connect(const alink_action_t *connect);

/* ALINK_ACT_DISCONNECT: asks the client to close its session, without waiting. Main task only. */
void mqtt_link_disconnect(void);

/* The msg id of the SUBSCRIBE, or -1 when there is no client or it refused. */
int mqtt_link_subscribe(const char *topic, int qos);

void mqtt_link_publish(const char *topic, const char *payload, size_t len, int qos);

/* The generation of the current client: events of older clients are stale. */
uint32_t mqtt_link_generation(void);

#ifdef __cplusplus
}
#endif
