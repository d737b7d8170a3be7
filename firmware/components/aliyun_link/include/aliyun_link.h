/*
 * aliyun_link: the device's behaviour on Alibaba Cloud IoT Platform as a pure state machine.
 *
 * Events in, actions out. A shell (firmware/main for ESP-IDF, firmware/host/device for POSIX) feeds
 * every platform happening as an alink_event_t into alink_handle(); the core answers by calling the
 * shell's emit function once per action (connect, subscribe, publish, set the LED, log a line, ...).
 * The core reads no clock, draws no random number and does no I/O: each event carries a monotonic
 * time in ms and a fresh random value. Pure C99 + aliyun_auth + cJSON (inbound parsing only); no
 * ESP-IDF include. One alink_t per connection; not thread-safe: feed it from one task.
 *
 * Lifecycle: WAIT_NETWORK --net up--> WAIT_TIME --time synced--> (connect) CONNECTING
 *   --mqtt connected--> SUBSCRIBING --all SUBACKs--> ONLINE. Any failure --> BACKOFF, from which a
 *   TICK past the jittered deadline connects again. Net down --> WAIT_NETWORK from anywhere.
 *   Offline too long: RESTART_NETWORK once per outage, then REBOOT.
 *
 * Log lines (ALINK_ACT_LOG; text without newline, identical on every platform; tests expect them):
 *   aliyun: triple loaded: <dn>&<pk>         (from alink_init: the shell read a valid triple)
 *   aliyun: network up                       aliyun: network lost
 *   aliyun: waiting for time sync            aliyun: time synced
 *   aliyun: time sync overdue: not connecting with an unset clock
 *   aliyun: connecting to <host>:<port> as <mqtt client id>
 *   aliyun: mqtt connected                   aliyun: mqtt disconnected
 *   aliyun: connect failed                   aliyun: connect timed out
 *   aliyun: server certificate rejected: <unknown CA|expired|not yet valid|name does not match the host|
 *                                         verification failed>   (then "connect failed")
 *   aliyun: connect refused: unacceptable protocol version      (CONNACK 1)
 *   aliyun: connect refused: identifier rejected                (CONNACK 2)
 *   aliyun: connect refused: server unavailable                 (CONNACK 3)
 *   aliyun: connect refused: bad username or password           (CONNACK 4: waits at the backoff cap)
 *   aliyun: connect refused: not authorized                     (CONNACK 5: waits at the backoff cap)
 *   aliyun: connect refused: code <n>                           (any other code)
 *   aliyun: cannot sign: <field>: <reason>
 *   aliyun: reconnecting in <ms> ms
 *   aliyun: subscribed <topic>               aliyun: subscribe refused <topic>
 *   aliyun: online
 *   aliyun: led on                           aliyun: led off
 *   aliyun: property post id=<id>
 *   aliyun: property set id=<id> code=<200|460>
 *   aliyun: service <Identifier> id=<id> code=<code>   (thing model services, async or through RRPC)
 *   aliyun: event <Identifier> id=<id>                 (alink_event_post)
 *   aliyun: ignored message: <reason>        reasons: too large, not JSON, too deeply nested,
 *                                            no id, bad id, no params, bad LightSwitch, no dn,
 *                                            bad s, other device, unknown topic
 *   aliyun: offline for <s> s: restarting network
 *   aliyun: offline for <s> s: rebooting
 *
 * One line the shells print themselves, before a core exists (same text on every platform):
 *   aliyun: halted: <reason>                 no usable triple (missing, unreadable, NVS keys that do
 *                                            not match the image, or refused by alink_init); repeated,
 *                                            and the device never connects
 *   ALINK_LOG_BLANK_MAC (alink_shell_facts.h): the MAC cannot be the client id, the DeviceName is used
 *
 * Event orders the shells' MQTT clients produce, all handled: a refusal then a disconnect (esp-mqtt:
 * MQTT_EVENT_ERROR then MQTT_EVENT_DISCONNECTED; the second is ignored in BACKOFF); a disconnect that
 * arrives after the core already gave the session up (ignored); a CONNACK for an attempt the core
 * gave up (answered with ALINK_ACT_DISCONNECT, so no session outlives the core's view). Every loss of
 * a session logs "reconnecting in" before the core asks the shell to close the client.
 */
#ifndef ALIYUN_LINK_H
#define ALIYUN_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aliyun_auth.h"
#include "alink_backoff.h"
#include "alink_json.h"
#include "alink_ota.h"
#include "alink_shell_facts.h"
#include "alink_status.h"
#include "alink_thing.h"
#include "alink_topics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Aliyun's SDKs sign with this fixed timestamp (2050-01-01) when the device has no clock. */
#define ALINK_FIXED_TIMESTAMP "2524608000000"
/* The broker refuses keep-alives outside 30..1200 s (Aliyun MQTT CONNECT documentation). */
#define ALINK_KEEPALIVE_MIN_S 30u
#define ALINK_KEEPALIVE_MAX_S 1200u
#define ALINK_SUBSCRIPTIONS 5u /* property set, setled; thing services and RRPC with a model that has services; the OTA upgrade when OTA is on */
#define ALINK_LOG_MAX 192u /* a log line, NUL included; longer lines are cut at a character */

typedef enum {
    ALINK_TIMESTAMP_CLOCK = 0, /* the synced wall clock at connect time (default) */
    ALINK_TIMESTAMP_FIXED,     /* ALINK_FIXED_TIMESTAMP, as Aliyun's SDKs do */
} alink_timestamp_mode_t;

typedef struct {
    /* The triple and the bare client id (MAC or DeviceName); the strings must outlive the core. */
    const char *product_key;
    const char *device_name;
    const char *device_secret;
    const char *client_id;
    aliyun_sign_method_t sign_method;
    alink_timestamp_mode_t timestamp_mode;
    int secure_mode;          /* 2 (TLS, 8883) or 3 (TCP, 1883) */
    const char *region;       /* legacy endpoint region, e.g. "cn-shanghai" */
    const char *endpoint;     /* instance endpoint; NULL or "" for the legacy host */
    uint32_t keepalive_s;     /* 30..1200 */
    uint32_t backoff_base_ms; /* first retry ceiling */
    uint32_t backoff_cap_ms;  /* largest retry ceiling; auth refusals wait this long */
    uint32_t stable_after_ms; /* a connection this long resets the backoff */
    uint32_t connect_timeout_ms;   /* no CONNACK/SUBACK within this: give up the attempt */
    uint32_t time_sync_timeout_ms; /* log once when the clock is still unset after this */
    uint32_t post_period_ms;       /* property post period while online; 0: only after changes */
    uint32_t restart_network_after_ms; /* offline this long: restart the network (0: never) */
    uint32_t reboot_after_ms;          /* offline this long: reboot (0: never) */
    /* OTA (alink_ota.h): the running image's version (esp_app_desc_t.version on a board); NULL turns
     * OTA off (no inform, no upgrade subscription). ota_slot_bytes: the passive slot's size. */
    const char *firmware_version;
    uint32_t ota_slot_bytes;
    /*
     * The product's thing model (alink_thing.h); with services, the core also subscribes to
     * /sys/{pk}/{dn}/thing/service/+ (async, answered on {id}_reply) and /sys/{pk}/{dn}/rrpc/request/+
     * (sync, answered on rrpc/response/{messageId}); inputs are checked like a set. NULL keeps the built-in LightSwitch/RSSI/FreeHeap model.
     * With it, property sets go through the engine (all-or-nothing, 460 naming the identifier) and posts
     * carry the model's properties. thing_props: the live values (the shell refreshes read-only readings
     * before a TICK); thing_staging: scratch of the same size; thing_payload: the buffer for posts and
     * replies (thing_payload_size bytes). thing_applied (may be NULL) runs after a set changed values,
     * with bit i set for property i. A bool property "LightSwitch" also drives the LED, as the seed did.
     */
    const alink_thing_model_t *thing_model;
    void *thing_props;
    void *thing_staging;
    char *thing_payload;
    size_t thing_payload_size;
    void *thing_input;  /* services: room for the largest input struct (thing_input_size bytes) */
    size_t thing_input_size;
    void *thing_output; /* services: room for the largest output struct */
    size_t thing_output_size;
    void *thing_posted;          /* optional, same size as thing_props: the values last posted, so that a
                                    TICK posts the properties that changed since (at most one such post
                                    per thing_post_min_interval_ms) */
    uint32_t thing_post_min_interval_ms;
    bool thing_post_time;        /* post each value as {"value":v,"time":ms} (wall clock) */
    void (*thing_applied)(void *thing_ctx, uint64_t changed);
    void *thing_ctx;
} alink_config_t;

/* Defaults for every numeric field (the strings stay NULL). */
void alink_config_defaults(alink_config_t *config);

typedef enum {
    ALINK_EV_NET_UP = 0,       /* got an IP address */
    ALINK_EV_NET_DOWN,         /* lost it (or the link) */
    ALINK_EV_TIME_SYNCED,      /* .time_synced.unix_ms: wall clock at now_ms */
    ALINK_EV_MQTT_CONNECTED,   /* CONNACK 0 */
    ALINK_EV_MQTT_REFUSED,     /* CONNACK with .connack_code != 0 */
    ALINK_EV_MQTT_DISCONNECTED,/* the session or the attempt ended without a CONNACK refusal */
    ALINK_EV_SUBACK,           /* .suback: the index from ALINK_ACT_SUBSCRIBE, granted or not */
    ALINK_EV_MESSAGE,          /* .message: a PUBLISH received (topic and payload need no NUL;
                                  payload may be NULL when too_large is set) */
    ALINK_EV_TICK,             /* periodic (1 s is plenty); .tick: fresh readings for the post */
    ALINK_EV_OTA_PROGRESS,     /* .ota.received_bytes written to the passive slot so far */
    ALINK_EV_OTA_DOWNLOADED,   /* the whole image is written: .ota.received_bytes and .ota.digest_hex
                                  (the image's SHA-256 or MD5, as the BEGIN action asked, hex, NUL-ended) */
    ALINK_EV_OTA_FAILED,       /* .ota.step: DOWNLOAD_FAILED (retries spent), WRITE_FAILED, or
                                  UPDATE_FAILED (the slot could not be made the boot slot) */
} alink_event_type_t;

typedef struct {
    alink_event_type_t type;
    uint64_t now_ms;  /* monotonic milliseconds, never going back */
    uint32_t random;  /* a fresh value from the platform's RNG (jitter) */
    union {
        struct {
            uint64_t unix_ms;
        } time_synced;
        int connack_code;
        alink_cert_refusal_t cert_refusal; /* MQTT_DISCONNECTED: why TLS refused the server, if it did */
        struct {
            unsigned index;
            bool granted;
        } suback;
        struct {
            const char *topic;
            size_t topic_len;
            const char *payload;
            size_t payload_len;
            bool too_large; /* the shell dropped a payload it could not hold; payload is not read */
        } message;
        struct {
            int rssi_dbm;
            uint32_t free_heap_bytes;
        } tick;
        struct {
            uint32_t received_bytes;
            const char *digest_hex;
            alink_ota_step_t step;
        } ota;
    } u;
} alink_event_t;

typedef enum {
    ALINK_ACT_LOG = 0,        /* .log.text: print it as one line */
    ALINK_ACT_CONNECT,        /* .connect: open an MQTT session; no retries of its own */
    ALINK_ACT_DISCONNECT,     /* close the session (if any); it must not reconnect by itself */
    ALINK_ACT_SUBSCRIBE,      /* .subscribe: answer with ALINK_EV_SUBACK carrying .index */
    ALINK_ACT_PUBLISH,        /* .publish */
    ALINK_ACT_SET_LED,        /* .set_led.on */
    ALINK_ACT_RESTART_NETWORK,/* stop and start the network interface */
    ALINK_ACT_REBOOT,         /* restart the chip / process */
    ALINK_ACT_OTA_BEGIN,      /* .ota_begin: download the image into the passive slot, hashing what is
                                 written; answer with OTA_PROGRESS events, then OTA_DOWNLOADED or OTA_FAILED.
                                 Resuming after a dropped connection and its retries are the shell's. */
    ALINK_ACT_OTA_FINISH,     /* the digest matched: close the slot, make it the boot slot (pending
                                 verification), restart; OTA_FAILED(UPDATE_FAILED) if that fails */
    ALINK_ACT_OTA_ABORT,      /* discard the written slot; the running image stays the boot image */
    ALINK_ACT_OTA_CONFIRM,    /* online (CONNACK and SUBACKs): mark the running image valid, which
                                 cancels the rollback; sent once per start, harmless on a valid image */
} alink_action_type_t;

/* Pointers inside an action are valid only during the emit call: copy what you keep. */
typedef struct {
    alink_action_type_t type;
    union {
        struct {
            const char *text;
        } log;
        struct {
            const char *host;
            uint16_t port;
            bool tls;
            const char *client_id;
            const char *username;
            const char *password; /* secret: never log it */
            uint32_t keepalive_s;
        } connect;
        struct {
            const char *topic;
            unsigned index;
            int qos;
        } subscribe;
        struct {
            const char *topic;
            const char *payload;
            size_t payload_len;
            int qos;
        } publish;
        struct {
            bool on;
        } set_led;
        struct {
            const char *url;
            uint32_t size;
            alink_ota_sign_method_t sign_method;
            const char *version;
        } ota_begin;
    } u;
} alink_action_t;

/* Called synchronously from alink_handle(). It must not call alink_handle() itself (the core is not
 * re-entrant): an IDF or POSIX callback that follows from an action is queued as a later event. */
typedef void (*alink_emit_fn)(void *emit_ctx, const alink_action_t *action);

typedef enum {
    ALINK_STATE_WAIT_NETWORK = 0,
    ALINK_STATE_WAIT_TIME,
    ALINK_STATE_BACKOFF,
    ALINK_STATE_CONNECTING,
    ALINK_STATE_SUBSCRIBING,
    ALINK_STATE_ONLINE,
} alink_state_t;

/* All state, caller-allocated (static on the device); fields are private. */
typedef struct {
    alink_config_t config;
    alink_emit_fn emit;
    void *emit_ctx;
    alink_state_t state;
    alink_backoff_t backoff;
    bool net_up;
    bool time_synced;
    bool time_wait_logged;
    bool led_on;
    bool network_restarted;
    bool reboot_requested;
    bool outage_started;
    uint64_t sync_mono_ms;
    uint64_t sync_unix_ms;
    uint64_t state_since_ms;
    uint64_t connected_at_ms;
    uint64_t next_connect_ms;
    uint64_t next_post_ms;
    uint64_t now_ms;          /* of the event being handled */
    uint64_t last_change_post_ms;
    uint64_t outage_since_ms;
    uint32_t next_message_id;
    unsigned subacks_pending;
    unsigned subscription_count;
    const char *subscribed_topics[ALINK_SUBSCRIPTIONS]; /* this session's, in SUBSCRIBE index order */
    int rssi_dbm;
    uint32_t free_heap_bytes;
    char topics[ALINK_TOPIC_COUNT][ALINK_TOPIC_SIZE];
    char payload[ALINK_PAYLOAD_SIZE];
    char line[ALINK_LOG_MAX];
    aliyun_auth_credentials_t credentials;
    alink_ota_t ota;
} alink_t;

/*
 * Checks the configuration (the triple through aliyun_auth_validate, keep-alive 30..1200, backoff
 * base <= cap, both non-zero) and prepares the core in WAIT_NETWORK. Emits nothing.
 * Returns ALINK_ERR_CONFIG (with *bad_field set when a credential field is at fault) or ALINK_ERR_ARG.
 */
alink_status_t alink_init(alink_t *core, const alink_config_t *config, alink_emit_fn emit, void *emit_ctx,
                          aliyun_auth_field_t *bad_field);

/* Feeds one event; emits 0..n actions before returning. ALINK_ERR_ARG for a malformed event. */
alink_status_t alink_handle(alink_t *core, const alink_event_t *event);

/*
 * Posts thing-model event `event_index` with its output struct to /sys/{pk}/{dn}/thing/event/{id}/post,
 * "time" the wall clock at now_ms (ms). Call it from the task that feeds alink_handle(), only ONLINE
 * (ALINK_ERR_ARG otherwise, or without a model or with an index out of range). Logs
 * "aliyun: event <Identifier> id=<id>".
 */
alink_status_t alink_event_post(alink_t *core, uint32_t event_index, const void *output, uint64_t now_ms);

alink_state_t alink_state(const alink_t *core);
bool alink_led_on(const alink_t *core);
const char *alink_state_name(alink_state_t state);

#ifdef __cplusplus
}
#endif

#endif /* ALIYUN_LINK_H */
