/*
 * Events from IDF callbacks (event loop, MQTT task, SNTP) to the main task, which alone feeds the
 * core. Posting never blocks: a callback that blocked while esp-mqtt holds its API lock could
 * deadlock against the main task publishing. Inbound messages travel in a small static pool.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aliyun_link.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    alink_event_type_t type;
    uint32_t mqtt_generation; /* which esp-mqtt client an MQTT event came from (0: not MQTT) */
    int64_t at_us;            /* esp_timer_get_time() when it happened */
    uint64_t unix_ms;         /* TIME_SYNCED: wall clock at at_us */
    int connack_code;         /* MQTT_REFUSED */
    alink_cert_refusal_t cert_refusal; /* MQTT_DISCONNECTED */
    int msg_id;               /* SUBACK: the msg id esp-mqtt returned for the SUBSCRIBE */
    bool granted;             /* SUBACK */
    int slot;                 /* MESSAGE: index into the message pool */
    uint32_t ota_bytes;       /* OTA_PROGRESS, OTA_DOWNLOADED: bytes written to the passive slot */
    int ota_step;             /* OTA_FAILED: an alink_ota_step_t */
} shell_event_t;

typedef struct {
    char topic[ALINK_TOPIC_SIZE];
    size_t topic_len;
    char payload[ALINK_OTA_MESSAGE_MAX > ALINK_INBOUND_MAX ? ALINK_OTA_MESSAGE_MAX : ALINK_INBOUND_MAX];
    size_t payload_len;
    bool too_large;
} shell_message_t;

/* Queues an event for the main task; false (and a warning) if the queue is full. */
bool shell_post(const shell_event_t *event);

/* A free message slot (its index in *slot), or NULL when all are in use. */
shell_message_t *shell_message_claim(int *slot);

/* Returns a claimed slot that will not be posted. */
void shell_message_release(int slot);

#ifdef __cplusplus
}
#endif
