/* libFuzzer target for the inbound-message path of the core: the bytes become one MQTT message
 * (first byte: which topic; the rest: the payload) fed to an aliyun_link core that is online.
 * Sanitizers (address, undefined) turn any out-of-bounds read, leak or UB into a crash; the checks
 * below turn a broken contract into one. Built and run by bench/firmware_fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aliyun_link.h"

static alink_t core;
static uint64_t now_ms = 1000;
static int strict; /* 0 while the start-up sequence legitimately connects */

static void check_action(void *ctx, const alink_action_t *a)
{
    (void)ctx;
    if (!strict) {
        return;
    }
    if (a->type == ALINK_ACT_LOG && strlen(a->u.log.text) >= ALINK_LOG_MAX) {
        abort();
    }
    if (a->type == ALINK_ACT_PUBLISH && (a->u.publish.payload_len >= ALINK_PAYLOAD_SIZE ||
                                         memchr(a->u.publish.payload, '\0', a->u.publish.payload_len))) {
        abort();
    }
    if (a->type == ALINK_ACT_CONNECT || a->type == ALINK_ACT_REBOOT) {
        abort(); /* an inbound message must never cause these */
    }
}

static void feed(alink_event_type_t type)
{
    alink_event_t ev = {.type = type, .now_ms = now_ms++, .random = 4};
    if (type == ALINK_EV_TIME_SYNCED) {
        ev.u.time_synced.unix_ms = 1700000000000ull;
    }
    (void)alink_handle(&core, &ev);
}

static void bring_online(void)
{
    alink_config_t cfg;
    alink_config_defaults(&cfg);
    cfg.product_key = "a1pk";
    cfg.device_name = "dev1";
    cfg.device_secret = "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t12";
    cfg.reboot_after_ms = 0;
    if (alink_init(&core, &cfg, check_action, NULL, NULL) != ALINK_OK) {
        abort();
    }
    feed(ALINK_EV_NET_UP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const topics[] = {"/sys/a1pk/dev1/thing/service/property/set", "/a1pk/dev1/user/setled",
                                         "/a1pk/dev1/user/other"};
    if (alink_state(&core) != ALINK_STATE_ONLINE) {
        strict = 0;
        bring_online();
        feed(ALINK_EV_TIME_SYNCED);
        feed(ALINK_EV_MQTT_CONNECTED);
        alink_event_t ev = {.type = ALINK_EV_SUBACK, .now_ms = now_ms++};
        (void)alink_handle(&core, &ev);
        ev.u.suback.index = 1;
        (void)alink_handle(&core, &ev);
        strict = 1;
    }
    if (size == 0) {
        return 0;
    }
    const char *topic = topics[data[0] % 3];
    size_t topic_len = strlen(topic);
    if (data[0] >= 0xf0) { /* a topic from the input itself */
        topic = (const char *)data + 1;
        topic_len = size - 1 < 64 ? size - 1 : 64;
    }
    /* the payload in a heap block of its exact size, so a read past its end is caught */
    char *payload = malloc(size - 1 ? size - 1 : 1);
    if (!payload) {
        return 0;
    }
    memcpy(payload, data + 1, size - 1);
    alink_event_t ev = {.type = ALINK_EV_MESSAGE, .now_ms = now_ms++, .random = 7};
    ev.u.message.topic = topic;
    ev.u.message.topic_len = topic_len;
    ev.u.message.payload = payload;
    ev.u.message.payload_len = size - 1;
    if (alink_handle(&core, &ev) != ALINK_OK) {
        abort();
    }
    free(payload);
    return 0;
}
