/* libFuzzer target for the inbound-message path of the core: the bytes become one MQTT message
 * (first byte: which topic; the rest: the payload) fed to an aliyun_link core that is online, OTA on.
 * First byte 0xe0..0xef: an accepted OTA update, then the rest as the shell's OTA events (progress
 * counts and a digest), then a failure that ends it, so every input starts with no update running.
 * Sanitizers (address, undefined) turn any out-of-bounds read, leak or UB into a crash; the checks
 * below turn a broken contract into one. Built and run by bench/firmware_fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aliyun_link.h"

#define SLOT_BYTES 1000000u
#define RUNNING_VERSION "1.0.0"

static alink_t core;

static int strncasecmp_ascii(const char *text, const char *prefix)
{
    for (; *prefix; text++, prefix++) {
        char c = *text >= 'A' && *text <= 'Z' ? (char)(*text - 'A' + 'a') : *text;
        if (c != *prefix) {
            return 1;
        }
    }
    return 0;
}
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
    if (a->type == ALINK_ACT_OTA_BEGIN && strncasecmp_ascii(a->u.ota_begin.url, "https://") != 0) {
        abort(); /* only https images */
    }
    if (a->type == ALINK_ACT_OTA_BEGIN &&
        (a->u.ota_begin.size > SLOT_BYTES || strcmp(a->u.ota_begin.version, RUNNING_VERSION) == 0 ||
         strlen(a->u.ota_begin.version) > ALINK_OTA_VERSION_MAX)) {
        abort();
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
    cfg.firmware_version = RUNNING_VERSION;
    cfg.ota_slot_bytes = SLOT_BYTES;
    if (alink_init(&core, &cfg, check_action, NULL, NULL) != ALINK_OK) {
        abort();
    }
    feed(ALINK_EV_NET_UP);
}

static void message(const char *topic, const char *payload, size_t len)
{
    alink_event_t ev = {.type = ALINK_EV_MESSAGE, .now_ms = now_ms++, .random = 7};
    ev.u.message.topic = topic;
    ev.u.message.topic_len = strlen(topic);
    ev.u.message.payload = payload;
    ev.u.message.payload_len = len;
    if (alink_handle(&core, &ev) != ALINK_OK) {
        abort();
    }
}

/* Each 4 bytes: an event kind and a count; a digest event takes the next 64 bytes as its hex. */
static void ota_events(const uint8_t *data, size_t size)
{
    static const char push[] = "{\"code\":\"1000\",\"data\":{\"size\":1000,\"sign\":\""
                               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
                               "\"signMethod\":\"SHA256\",\"url\":\"https://h/fw.bin\",\"version\":\"2\"}}";
    char digest[ALINK_OTA_SIGN_MAX + 1];
    message("/ota/device/upgrade/a1pk/dev1", push, sizeof push - 1u);
    for (size_t i = 0; i + 4u <= size; i += 4u) {
        alink_event_t ev = {.now_ms = now_ms += data[i + 1], .random = 3};
        ev.u.ota.received_bytes = (uint32_t)data[i + 2] << 8 | data[i + 3];
        ev.u.ota.step = (alink_ota_step_t)(int8_t)data[i + 1];
        switch (data[i] % 3) {
        case 0:
            ev.type = ALINK_EV_OTA_PROGRESS;
            break;
        case 1:
            ev.type = ALINK_EV_OTA_DOWNLOADED;
            memset(digest, 0, sizeof digest);
            if (i + 4u + ALINK_OTA_SIGN_MAX <= size) {
                memcpy(digest, data + i + 4u, ALINK_OTA_SIGN_MAX);
                i += ALINK_OTA_SIGN_MAX;
            }
            ev.u.ota.digest_hex = digest;
            break;
        default:
            ev.type = ALINK_EV_OTA_FAILED;
            break;
        }
        if (alink_handle(&core, &ev) != ALINK_OK) {
            abort();
        }
    }
    alink_event_t end = {.type = ALINK_EV_OTA_FAILED, .now_ms = now_ms++, .random = 3};
    end.u.ota.step = ALINK_OTA_STEP_DOWNLOAD_FAILED;
    (void)alink_handle(&core, &end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const topics[] = {"/sys/a1pk/dev1/thing/service/property/set", "/a1pk/dev1/user/setled",
                                         "/a1pk/dev1/user/other", "/ota/device/upgrade/a1pk/dev1"};
    if (alink_state(&core) != ALINK_STATE_ONLINE) {
        strict = 0;
        bring_online();
        feed(ALINK_EV_TIME_SYNCED);
        feed(ALINK_EV_MQTT_CONNECTED);
        alink_event_t ev = {.type = ALINK_EV_SUBACK, .now_ms = now_ms++};
        (void)alink_handle(&core, &ev);
        ev.u.suback.index = 1;
        (void)alink_handle(&core, &ev);
        ev.u.suback.index = 2;
        (void)alink_handle(&core, &ev);
        strict = 1;
    }
    if (size == 0) {
        return 0;
    }
    if (data[0] >= 0xe0 && data[0] < 0xf0) {
        ota_events(data + 1, size - 1);
        return 0;
    }
    const char *topic = topics[data[0] % 4];
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
