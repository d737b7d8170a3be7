/*
 * Alink JSON (Aliyun "Alink protocol" documentation): outbound messages are written with snprintf
 * into caller buffers (no heap); inbound commands are parsed with cJSON after a size and depth check
 * so that a hostile payload can neither exhaust the heap nor the stack.
 *   post:  {"id":"7","version":"1.0","params":{"LightSwitch":1,"RSSI":-60,"FreeHeap":123},
 *           "method":"thing.event.property.post"}
 *   set:   {"id":"8","version":"1.0","params":{"LightSwitch":0},"method":"thing.service.property.set"}
 *   reply: {"id":"8","code":200,"data":{},"message":"success","version":"1.0"}
 *   setled (custom topic): {"dn":"<DeviceName>","s":1}
 */
#ifndef ALINK_JSON_H
#define ALINK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alink_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ALINK_INBOUND_MAX 1024u   /* larger inbound payloads are refused before parsing */
/* The MQTT client's receive buffer: a PUBLISH of ALINK_INBOUND_MAX payload bytes, or an OTA upgrade message of
 * ALINK_OTA_MESSAGE_MAX (alink_ota.h), on the longest topic (fixed header 5, topic length 2, topic, packet id 2)
 * arrives whole. The ESP-IDF shell checks CONFIG_MQTT_BUFFER_SIZE against it at build time (main/mqtt_link.c). */
#define ALINK_MQTT_BUFFER_SIZE 3072u
#define ALINK_JSON_DEPTH_MAX 4u   /* deepest nesting accepted ({"params":{...}} is 2) */
#define ALINK_PAYLOAD_SIZE 256u   /* outbound payload buffer */
#define ALINK_ID_MAX 10u          /* Alink ids: decimal strings of a uint32 */
#define ALINK_CODE_OK 200
#define ALINK_CODE_BAD_PARAMS 460 /* Alink: "request parameter error" */

typedef struct {
    bool light_switch;
    int rssi_dbm;
    uint32_t free_heap_bytes;
} alink_properties_t;

typedef struct {
    char id[ALINK_ID_MAX + 1];
    bool has_light_switch;
    bool light_switch;
} alink_property_set_t;

typedef struct {
    char device_name[64];
    bool on;
} alink_setled_t;

/* The property post payload into out; *len gets its length (without NUL). */
alink_status_t alink_json_property_post(uint32_t id, const alink_properties_t *props, char *out, size_t out_size,
                                        size_t *len);

/* The reply to a service call; `id` must be a valid Alink id (digits). */
alink_status_t alink_json_reply(const char *id, int code, char *out, size_t out_size, size_t *len);

/*
 * Parses a property set. On ALINK_ERR_BAD_VALUE / ALINK_ERR_NO_PARAMS the id is filled (a reply
 * with code 460 can be sent); on other errors it is empty.
 */
alink_status_t alink_json_parse_property_set(const char *payload, size_t len, alink_property_set_t *out);

/* Before cJSON sees outside input: ALINK_OK, ALINK_ERR_TOO_LARGE (over max_len bytes) or ALINK_ERR_NESTING
 * (objects/arrays deeper than max_depth; cJSON recurses once per level). Every parser of the core calls it. */
alink_status_t alink_json_check_shape(const char *payload, size_t len, size_t max_len, unsigned max_depth);

/* Parses {"dn":"...","s":0|1}. A dn longer than the field is refused as ALINK_ERR_NO_DN. */
alink_status_t alink_json_parse_setled(const char *payload, size_t len, alink_setled_t *out);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_JSON_H */
