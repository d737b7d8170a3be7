/*
 * aliyun_device: the firmware's core (components/aliyun_link) on a POSIX host, the way firmware/main runs
 * it on ESP-IDF. Only translation lives here: the triple comes from the NVS image `provision gen-nvs`
 * wrote (decrypted like nvs_flash does), the host clock stands in for SNTP (--clock-skew shifts it),
 * libmosquitto over TLS stands in for esp-mqtt, the LED is a log line, stdout is the serial console.
 * Every "aliyun: ..." line comes from the core, so tests expect the same text as on a board.
 *
 *   aliyun_device --nvs nvs.bin [--nvs-keys nvs_keys.bin | --hmac-key hmac_key.bin] [--endpoint HOST]
 *                 [--port N] [--ca FILE] [--clock-skew S] [--client-id ID] [--sign-method M]
 *                 [--backoff-base-ms N] [--backoff-cap-ms N] [--post-period-s N] [--keepalive-s N]
 *                 [--ota-dir DIR [--ota-slot-bytes N] [--ota-confirm-s N]]
 *                 [--reading ID=JSON]... [--event ID[=JSON]]... [--stdin]
 * With --ota-dir the device takes OTA updates into slot files there (host_ota.h); without it OTA is off.
 * The thing model is the one the build rendered (host_thing.h: the stand-in application, its readings,
 * events and the --stdin lines).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sigaction, nanosleep under -std=c11 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "aliyun_link.h"
#include "aliyun_root_ca.h"
#include "host_ota.h"
#include "host_ota_fetch.h"
#include "host_thing.h"
#include "host_tls.h"
#include "nvs_image.h"

#define TICK_MS 100u      /* finer than the board's 1 s, so backoff deadlines are met within 0.1 s */
#define QUEUE_LENGTH 32u
#define FILE_MAX (16u * 1024u * 1024u)

typedef struct {
    alink_event_type_t type;
    uint32_t generation;
    int connack_code;
    alink_cert_refusal_t cert_refusal;
    int mid;
    bool granted;
    char topic[ALINK_TOPIC_SIZE];
    size_t topic_len;
    char payload[ALINK_OTA_MESSAGE_MAX > ALINK_INBOUND_MAX ? ALINK_OTA_MESSAGE_MAX : ALINK_INBOUND_MAX];
    size_t payload_len;
    bool too_large;
} queued_event_t;

typedef struct {
    const char *nvs_path;
    const char *nvs_keys_path;
    const char *hmac_key_path;
    const char *ca_path;
    const char *endpoint;
    const char *client_id;
    long port;
    long clock_skew_s;
    aliyun_sign_method_t sign_method;
    uint32_t backoff_base_ms;
    uint32_t backoff_cap_ms;
    uint32_t post_period_s;
    uint32_t keepalive_s;
    const char *ota_dir;
    uint32_t ota_slot_bytes;
    uint32_t ota_confirm_s;
    bool stdin_commands;
} options_t;

typedef struct {
    char product_key[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    char device_name[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char device_secret[ALIYUN_AUTH_DEVICE_SECRET_MAX + 1];
    char region[64];
} triple_t;

typedef struct {
    alink_t core; /* a few KB: the host keeps it static like the board */
    options_t options;
    struct mosquitto *mosq;
    uint32_t generation;
    int sub_mids[ALINK_SUBSCRIPTIONS];
    char *ca_pem;
    size_t ca_len;
    queued_event_t queue[QUEUE_LENGTH];
    unsigned queue_head;
    unsigned queue_count;
    bool disconnect_reported; /* for the current session */
    host_ota_t ota;
    char **boot_argv;         /* argv as given, for restarts (getopt reorders argv) */
    uint64_t started_ms;
    uint32_t ota_reported_bytes;
} host_t;

static host_t s_host;
static triple_t s_triple;
static volatile sig_atomic_t s_stop;

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_signal(int signo)
{
    (void)signo;
    s_stop = 1;
}

/* Never connects: the same line as the firmware's halt, then exit (a host process has nothing to wait for). */
static void halt(const char *reason)
{
    printf("aliyun: halted: %s\n", reason);
    exit(3);
}

/* Backoff jitter is what keeps a fleet from reconnecting in lockstep after an outage, so a device with no
 * random source stops with a reason instead of silently running without jitter. */
static uint32_t random_u32(void)
{
    uint32_t value;
    if (RAND_bytes((unsigned char *)&value, (int)sizeof value) != 1) {
        halt("no random source for backoff jitter (OpenSSL RAND_bytes failed)");
    }
    return value;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return NULL;
    }
    uint8_t *data = malloc(FILE_MAX);
    size_t n = data != NULL ? fread(data, 1, FILE_MAX, file) : 0;
    int too_big = data != NULL && n == FILE_MAX && fgetc(file) != EOF;
    fclose(file);
    if (data == NULL || too_big || n == 0) {
        free(data);
        return NULL;
    }
    *size = n;
    return data;
}

/* ---- the triple, from the NVS image (like firmware/main/device_triple.c) ---- */

static void load_triple(const options_t *o, triple_t *out)
{
    static const struct {
        const char *namespace_name;
        const char *keys[4];
    } layouts[] = {
        {"aliyun", {"product_key", "device_name", "device_secret", "region"}},
        {"aliyun-key", {"ProductKey", "DeviceName", "DeviceSecret", NULL}},
    };
    char why[256];
    uint8_t xts_key[NVS_IMAGE_XTS_KEY_SIZE];
    const char *hint = (o->nvs_keys_path || o->hmac_key_path) ? " (or the NVS keys do not match the image)" : "";
    size_t size = 0;
    uint8_t *image_data = read_file(o->nvs_path, &size);
    if (image_data == NULL) {
        snprintf(why, sizeof why, "NVS image %s cannot be read", o->nvs_path);
        halt(why);
    }
    nvs_image_t image = {.data = image_data, .size = size, .xts_key = NULL};
    if (o->nvs_keys_path != NULL || o->hmac_key_path != NULL) {
        const char *path = o->nvs_keys_path != NULL ? o->nvs_keys_path : o->hmac_key_path;
        size_t key_size = 0;
        uint8_t *key_data = read_file(path, &key_size);
        nvs_image_status_t st = NVS_IMAGE_ERR_KEYS;
        if (key_data != NULL && o->nvs_keys_path != NULL) {
            st = nvs_image_keys_from_partition(key_data, key_size, xts_key);
        } else if (key_data != NULL && key_size == NVS_IMAGE_HMAC_KEY_SIZE) {
            st = nvs_image_keys_from_hmac(key_data, xts_key);
        }
        if (key_data != NULL) {
            memset(key_data, 0, key_size);
            free(key_data);
        }
        if (st != NVS_IMAGE_OK) {
            snprintf(why, sizeof why, "NVS encryption keys missing or unreadable (%s)", path);
            halt(why);
        }
        image.xts_key = xts_key;
    }
    char *fields[4] = {out->product_key, out->device_name, out->device_secret, out->region};
    size_t sizes[4] = {sizeof out->product_key, sizeof out->device_name, sizeof out->device_secret,
                       sizeof out->region};
    int found = 0;
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0] && !found; l++) {
        nvs_image_status_t st = NVS_IMAGE_OK;
        for (int f = 0; f < 3 && st == NVS_IMAGE_OK; f++) {
            st = nvs_image_get_str(&image, layouts[l].namespace_name, layouts[l].keys[f], fields[f], sizes[f]);
        }
        if (st == NVS_IMAGE_OK) {
            found = 1;
            if (layouts[l].keys[3] == NULL
                || nvs_image_get_str(&image, layouts[l].namespace_name, layouts[l].keys[3], out->region,
                                     sizeof out->region) != NVS_IMAGE_OK) {
                out->region[0] = '\0';
            }
        } else if (st != NVS_IMAGE_ERR_NOT_FOUND) {
            snprintf(why, sizeof why, "NVS key %s in %s: %s%s", layouts[l].keys[0], o->nvs_path,
                     nvs_image_strerror(st), hint);
            halt(why);
        }
    }
    memset(xts_key, 0, sizeof xts_key);
    memset(image_data, 0, size);
    free(image_data);
    if (!found) {
        memset(out, 0, sizeof *out);
        snprintf(why, sizeof why, "no device triple in NVS image %s (namespace aliyun or aliyun-key)%s",
                 o->nvs_path, hint);
        halt(why);
    }
}

/* ---- libmosquitto callbacks: queue only (the core is fed from the main loop, never re-entered) ---- */

static queued_event_t *enqueue(alink_event_type_t type)
{
    if (s_host.queue_count == QUEUE_LENGTH) {
        fprintf(stderr, "host: event queue full: event %d dropped\n", (int)type);
        return NULL;
    }
    queued_event_t *ev = &s_host.queue[(s_host.queue_head + s_host.queue_count++) % QUEUE_LENGTH];
    memset(ev, 0, offsetof(queued_event_t, topic));
    ev->type = type;
    ev->generation = s_host.generation;
    return ev;
}

static void on_connect(struct mosquitto *mosq, void *ctx, int rc)
{
    (void)mosq;
    (void)ctx;
    queued_event_t *ev = enqueue(rc == 0 ? ALINK_EV_MQTT_CONNECTED : ALINK_EV_MQTT_REFUSED);
    if (ev != NULL) {
        ev->connack_code = rc;
    }
}

/* Once per session: the core hears of its end, and a certificate refusal is named (the TLS handshake may
 * finish inside mosquitto_loop, after mosquitto_connect returned). */
static void report_disconnect(void)
{
    if (s_host.disconnect_reported) {
        return;
    }
    s_host.disconnect_reported = true;
    alink_cert_refusal_t refusal = host_tls_take_refusal();
    queued_event_t *ev = enqueue(ALINK_EV_MQTT_DISCONNECTED);
    if (ev != NULL) {
        ev->cert_refusal = refusal;
    }
}

static void on_disconnect(struct mosquitto *mosq, void *ctx, int rc)
{
    (void)mosq;
    (void)ctx;
    (void)rc;
    report_disconnect();
}

static void on_subscribe(struct mosquitto *mosq, void *ctx, int mid, int qos_count, const int *granted_qos)
{
    (void)mosq;
    (void)ctx;
    queued_event_t *ev = enqueue(ALINK_EV_SUBACK);
    if (ev != NULL) {
        ev->mid = mid;
        ev->granted = qos_count > 0 && granted_qos[0] >= 0 && granted_qos[0] <= 2;
    }
}

static void on_message(struct mosquitto *mosq, void *ctx, const struct mosquitto_message *m)
{
    (void)mosq;
    (void)ctx;
    queued_event_t *ev = enqueue(ALINK_EV_MESSAGE);
    if (ev == NULL) {
        return;
    }
    size_t topic_len = strlen(m->topic);
    ev->topic_len = topic_len < sizeof ev->topic ? topic_len : sizeof ev->topic; /* too long cannot match */
    memcpy(ev->topic, m->topic, ev->topic_len);
    ev->too_large = m->payloadlen < 0 || (size_t)m->payloadlen > sizeof ev->payload;
    ev->payload_len = ev->too_large ? 0 : (size_t)m->payloadlen;
    if (!ev->too_large && ev->payload_len > 0) {
        memcpy(ev->payload, m->payload, ev->payload_len);
    }
}

/* ---- actions ---- */

static void mqtt_close(void)
{
    if (s_host.mosq != NULL) {
        mosquitto_disconnect(s_host.mosq);
        mosquitto_destroy(s_host.mosq);
        s_host.mosq = NULL;
    }
    s_host.generation++; /* events still queued from the old client are stale */
}

static void mqtt_connect(const alink_action_t *a)
{
    mqtt_close();
    s_host.disconnect_reported = false;
    const char *host = a->u.connect.host;
    int port = s_host.options.port > 0 ? (int)s_host.options.port : (int)a->u.connect.port;
    char why[160];
    if (port != (int)a->u.connect.port) {
        printf("host: mqtt: port %d instead of %u (--port)\n", port, (unsigned)a->u.connect.port);
    }
    s_host.mosq = mosquitto_new(a->u.connect.client_id, true, NULL);
    int rc = s_host.mosq != NULL ? mosquitto_username_pw_set(s_host.mosq, a->u.connect.username,
                                                             a->u.connect.password)
                                 : MOSQ_ERR_NOMEM;
    if (rc == MOSQ_ERR_SUCCESS && a->u.connect.tls) {
        SSL_CTX *ctx = host_tls_context(s_host.ca_pem, s_host.ca_len, host, why, sizeof why);
        if (ctx == NULL) {
            printf("host: tls: %s\n", why);
            rc = MOSQ_ERR_TLS;
        } else {
            rc = mosquitto_int_option(s_host.mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
            if (rc == MOSQ_ERR_SUCCESS) {
                rc = mosquitto_void_option(s_host.mosq, MOSQ_OPT_SSL_CTX, ctx); /* takes its own reference */
            }
            SSL_CTX_free(ctx);
        }
    }
    if (rc == MOSQ_ERR_SUCCESS) {
        mosquitto_int_option(s_host.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        mosquitto_connect_callback_set(s_host.mosq, on_connect);
        mosquitto_disconnect_callback_set(s_host.mosq, on_disconnect);
        mosquitto_subscribe_callback_set(s_host.mosq, on_subscribe);
        mosquitto_message_callback_set(s_host.mosq, on_message);
        rc = mosquitto_connect(s_host.mosq, host, port, (int)a->u.connect.keepalive_s);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        if (rc == MOSQ_ERR_ERRNO) {
            printf("host: mqtt: %s:%d: %s\n", host, port, strerror(errno));
        } else if (rc != MOSQ_ERR_TLS) {
            printf("host: mqtt: %s:%d: %s\n", host, port, mosquitto_strerror(rc));
        }
        if (s_host.mosq != NULL) {
            mosquitto_destroy(s_host.mosq);
            s_host.mosq = NULL;
        }
        report_disconnect();
    }
}

static void ota_failed(alink_ota_step_t step);

/* Lets the last posts (progress 100) leave before the process image is replaced. */
static void flush_session(void)
{
    for (int i = 0; i < 5 && s_host.mosq != NULL; i++) {
        if (mosquitto_loop(s_host.mosq, 20, 1) != MOSQ_ERR_SUCCESS) {
            break;
        }
    }
    mqtt_close();
}

static void ota_action(const alink_action_t *a)
{
    char slot[300];
    host_ota_passive_path(&s_host.ota, slot, sizeof slot);
    switch (a->type) {
    case ALINK_ACT_OTA_BEGIN:
        s_host.ota_reported_bytes = 0;
        if (!host_ota_fetch_start(a, slot, s_host.ca_pem, s_host.ca_len)) {
            printf("host: ota: cannot start the download\n");
            ota_failed(ALINK_OTA_STEP_DOWNLOAD_FAILED); /* queued: the core is not re-entered */
        }
        break;
    case ALINK_ACT_OTA_FINISH:
        flush_session();
        if (!host_ota_switch(&s_host.ota, s_host.boot_argv)) {
            ota_failed(ALINK_OTA_STEP_UPDATE_FAILED);
        }
        break;
    case ALINK_ACT_OTA_ABORT:
        if (truncate(slot, 0) != 0) {
            printf("host: ota: cannot clear %s\n", slot);
        }
        break;
    case ALINK_ACT_OTA_CONFIRM:
        host_ota_confirm(&s_host.ota);
        break;
    default:
        break;
    }
}

static void emit(void *ctx, const alink_action_t *a)
{
    (void)ctx;
    switch (a->type) {
    case ALINK_ACT_LOG:
        printf("%s\n", a->u.log.text);
        break;
    case ALINK_ACT_CONNECT:
        mqtt_connect(a);
        break;
    case ALINK_ACT_DISCONNECT:
        mqtt_close();
        break;
    case ALINK_ACT_SUBSCRIBE: {
        int mid = -1;
        if (s_host.mosq == NULL
            || mosquitto_subscribe(s_host.mosq, &mid, a->u.subscribe.topic, a->u.subscribe.qos) != MOSQ_ERR_SUCCESS) {
            mid = -100 - (int)a->u.subscribe.index; /* answered below as the broker would: refused */
        }
        s_host.sub_mids[a->u.subscribe.index] = mid;
        if (mid <= -100) {
            queued_event_t *ev = enqueue(ALINK_EV_SUBACK);
            if (ev != NULL) {
                ev->mid = mid;
                ev->granted = false;
            }
        }
        break;
    }
    case ALINK_ACT_PUBLISH:
        if (s_host.mosq == NULL
            || mosquitto_publish(s_host.mosq, NULL, a->u.publish.topic, (int)a->u.publish.payload_len,
                                 a->u.publish.payload, a->u.publish.qos, false) != MOSQ_ERR_SUCCESS) {
            printf("host: publish to %s failed\n", a->u.publish.topic);
        }
        break;
    case ALINK_ACT_SET_LED:
        printf("host: led gpio level %d\n", a->u.set_led.on ? 1 : 0);
        break;
    case ALINK_ACT_RESTART_NETWORK:
        mqtt_close(); /* the host's network is not ours to restart; the session is */
        break;
    case ALINK_ACT_REBOOT:
        printf("host: reboot requested\n");
        s_stop = 1;
        break;
    case ALINK_ACT_OTA_BEGIN:
    case ALINK_ACT_OTA_FINISH:
    case ALINK_ACT_OTA_ABORT:
    case ALINK_ACT_OTA_CONFIRM:
        ota_action(a);
        break;
    }
}

static void feed(alink_event_t *ev)
{
    ev->now_ms = monotonic_ms();
    ev->random = random_u32();
    (void)alink_handle(&s_host.core, ev);
}

static void ota_failed(alink_ota_step_t step)
{
    queued_event_t *ev = enqueue(ALINK_EV_OTA_FAILED);
    if (ev != NULL) {
        ev->connack_code = (int)step; /* the queue's int field carries the step */
    }
}

/* The download thread's state as core events; called from the main loop only. */
static void poll_ota(void)
{
    host_ota_fetch_status_t st;
    alink_event_t ev;
    host_ota_fetch_poll(&st);
    memset(&ev, 0, sizeof ev);
    ev.u.ota.received_bytes = st.received_bytes;
    if (st.state == HOST_OTA_FETCH_RUNNING && st.received_bytes != s_host.ota_reported_bytes) {
        s_host.ota_reported_bytes = st.received_bytes;
        ev.type = ALINK_EV_OTA_PROGRESS;
        feed(&ev);
    } else if (st.state == HOST_OTA_FETCH_DONE) {
        ev.type = ALINK_EV_OTA_DOWNLOADED;
        ev.u.ota.digest_hex = st.digest_hex;
        feed(&ev);
    } else if (st.state == HOST_OTA_FETCH_FAILED) {
        ev.type = ALINK_EV_OTA_FAILED;
        ev.u.ota.step = st.step;
        feed(&ev);
    }
    if (s_host.options.ota_dir != NULL && s_host.ota.trying &&
        monotonic_ms() - s_host.started_ms >= (uint64_t)s_host.options.ota_confirm_s * 1000u) {
        /* the board's task watchdog and offline reboot end an image that never comes online; here
         * this bound does, and the restart rolls back */
        printf("host: ota: not online within %u s: restarting\n", (unsigned)s_host.options.ota_confirm_s);
        mqtt_close();
        host_ota_restart(s_host.boot_argv);
        s_stop = 1;
    }
}

/* Translates one queued event; false when stale (from a client already closed) or unmatched. */
static bool translate(const queued_event_t *in, alink_event_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = in->type;
    if (in->generation != s_host.generation) {
        return false;
    }
    switch (in->type) {
    case ALINK_EV_MQTT_REFUSED:
        out->u.connack_code = in->connack_code;
        return true;
    case ALINK_EV_MQTT_DISCONNECTED:
        out->u.cert_refusal = in->cert_refusal;
        return true;
    case ALINK_EV_OTA_FAILED:
        out->u.ota.step = (alink_ota_step_t)in->connack_code;
        return true;
    case ALINK_EV_SUBACK:
        for (unsigned i = 0; i < ALINK_SUBSCRIPTIONS; i++) {
            if (s_host.sub_mids[i] == in->mid) {
                out->u.suback.index = i;
                out->u.suback.granted = in->granted;
                return true;
            }
        }
        return false;
    case ALINK_EV_MESSAGE:
        out->u.message.topic = in->topic;
        out->u.message.topic_len = in->topic_len;
        out->u.message.payload = in->payload;
        out->u.message.payload_len = in->payload_len;
        out->u.message.too_large = in->too_large;
        return true;
    default:
        return true;
    }
}

static void drain_queue(void)
{
    while (s_host.queue_count > 0) {
        queued_event_t *in = &s_host.queue[s_host.queue_head];
        alink_event_t ev;
        bool fresh = translate(in, &ev);
        bool refused = in->type == ALINK_EV_MQTT_REFUSED && fresh;
        if (fresh) {
            feed(&ev); /* may enqueue more (a failed connect): handled in this same loop */
        }
        s_host.queue_head = (s_host.queue_head + 1u) % QUEUE_LENGTH;
        s_host.queue_count--;
        if (refused) {
            mqtt_close(); /* a refused session is over; its disconnect callback is now stale */
        }
    }
}

/* ---- options ---- */

static void usage(const char *why)
{
    fprintf(stderr, "aliyun_device: %s\n", why);
    fprintf(stderr, "usage: aliyun_device --nvs FILE [--nvs-keys FILE | --hmac-key FILE] [--endpoint HOST] [--port N]\n"
                    "       [--ca FILE] [--clock-skew S] [--client-id ID] [--sign-method hmacmd5|hmacsha1|hmacsha256]\n"
                    "       [--backoff-base-ms N] [--backoff-cap-ms N] [--post-period-s N] [--keepalive-s N]\n"
                    "       [--ota-dir DIR [--ota-slot-bytes N] [--ota-confirm-s N]]\n"
                    "       [--reading ID=JSON]... [--event ID[=JSON]]... [--stdin]\n");
    exit(2);
}

static long parse_long(const char *text, long min, long max, const char *name)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        char why[96];
        snprintf(why, sizeof why, "%s: '%s' is not a number in %ld..%ld", name, text, min, max);
        usage(why);
    }
    return value;
}

static void parse_options(int argc, char **argv, options_t *o)
{
    static const struct option longs[] = {
        {"nvs", required_argument, NULL, 'n'},          {"nvs-keys", required_argument, NULL, 'k'},
        {"hmac-key", required_argument, NULL, 'm'},     {"ca", required_argument, NULL, 'c'},
        {"endpoint", required_argument, NULL, 'e'},     {"port", required_argument, NULL, 'p'},
        {"clock-skew", required_argument, NULL, 's'},   {"client-id", required_argument, NULL, 'i'},
        {"sign-method", required_argument, NULL, 'g'},  {"backoff-base-ms", required_argument, NULL, 'b'},
        {"backoff-cap-ms", required_argument, NULL, 'B'}, {"post-period-s", required_argument, NULL, 'P'},
        {"keepalive-s", required_argument, NULL, 'K'},  {"ota-dir", required_argument, NULL, 'o'},
        {"ota-slot-bytes", required_argument, NULL, 'O'}, {"ota-confirm-s", required_argument, NULL, 'C'},
        {"reading", required_argument, NULL, 'r'},      {"event", required_argument, NULL, 'v'},
        {"stdin", no_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->sign_method = ALIYUN_SIGN_HMACSHA1;
    o->ota_slot_bytes = 16u * 1024u * 1024u;
    o->ota_confirm_s = 120;
    int c;
    char why[160];
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n': o->nvs_path = optarg; break;
        case 'k': o->nvs_keys_path = optarg; break;
        case 'm': o->hmac_key_path = optarg; break;
        case 'c': o->ca_path = optarg; break;
        case 'e': o->endpoint = optarg; break;
        case 'p': o->port = parse_long(optarg, 1, 65535, "--port"); break;
        case 's': o->clock_skew_s = parse_long(optarg, -3153600000L, 3153600000L, "--clock-skew"); break;
        case 'i': o->client_id = optarg; break;
        case 'g':
            if (aliyun_sign_method_parse(optarg, &o->sign_method) != ALIYUN_AUTH_OK) {
                usage("--sign-method: not hmacmd5, hmacsha1 or hmacsha256");
            }
            break;
        case 'b': o->backoff_base_ms = (uint32_t)parse_long(optarg, 1, 86400000L, "--backoff-base-ms"); break;
        case 'B': o->backoff_cap_ms = (uint32_t)parse_long(optarg, 1, 86400000L, "--backoff-cap-ms"); break;
        case 'P': o->post_period_s = (uint32_t)parse_long(optarg, 0, 86400L, "--post-period-s"); break;
        case 'K': o->keepalive_s = (uint32_t)parse_long(optarg, 1, 65535, "--keepalive-s"); break;
        case 'o': o->ota_dir = optarg; break;
        case 'O': o->ota_slot_bytes = (uint32_t)parse_long(optarg, 1, 2147483647L, "--ota-slot-bytes"); break;
        case 'C': o->ota_confirm_s = (uint32_t)parse_long(optarg, 1, 86400L, "--ota-confirm-s"); break;
        case 'r':
            if (!host_thing_reading(optarg, why, sizeof why)) {
                usage(why);
            }
            break;
        case 'v':
            if (!host_thing_event(optarg, why, sizeof why)) {
                usage(why);
            }
            break;
        case 'I': o->stdin_commands = true; break;
        default: usage("unknown option");
        }
    }
    if (optind != argc) {
        usage("unexpected argument");
    }
    if (o->nvs_path == NULL) {
        usage("--nvs FILE is required");
    }
    if (o->nvs_keys_path != NULL && o->hmac_key_path != NULL) {
        usage("--nvs-keys and --hmac-key are two schemes: give one");
    }
}

static void load_ca(const options_t *o)
{
    if (o->ca_path == NULL) {
        s_host.ca_pem = (char *)aliyun_root_ca_pem;
        s_host.ca_len = strlen(aliyun_root_ca_pem);
        return;
    }
    size_t size = 0;
    uint8_t *pem = read_file(o->ca_path, &size);
    if (pem == NULL) {
        fprintf(stderr, "aliyun_device: --ca %s: cannot be read\n", o->ca_path);
        exit(2);
    }
    s_host.ca_pem = (char *)pem;
    s_host.ca_len = size;
}

static void configure_core(const options_t *o)
{
    alink_config_t cfg;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    alink_config_defaults(&cfg);
    cfg.product_key = s_triple.product_key;
    cfg.device_name = s_triple.device_name;
    cfg.device_secret = s_triple.device_secret;
    cfg.client_id = o->client_id != NULL ? o->client_id : s_triple.device_name; /* the host has no MAC */
    cfg.sign_method = o->sign_method;
    cfg.secure_mode = 2;
    if (s_triple.region[0] != '\0') {
        cfg.region = s_triple.region;
    }
    cfg.endpoint = o->endpoint;
    if (o->keepalive_s != 0) {
        cfg.keepalive_s = o->keepalive_s;
    }
    if (o->backoff_base_ms != 0) {
        cfg.backoff_base_ms = o->backoff_base_ms;
    }
    if (o->backoff_cap_ms != 0) {
        cfg.backoff_cap_ms = o->backoff_cap_ms;
    }
    if (o->post_period_s != 0) {
        cfg.post_period_ms = o->post_period_s * 1000u;
    }
    if (o->ota_dir != NULL) {
        cfg.firmware_version = host_ota_running_version();
        cfg.ota_slot_bytes = o->ota_slot_bytes;
    }
    host_thing_configure(&cfg);
    alink_status_t st = alink_init(&s_host.core, &cfg, emit, NULL, &bad);
    if (st != ALINK_OK) {
        char reason[96];
        snprintf(reason, sizeof reason, "configuration refused (%s, field %d)", alink_strerror(st), (int)bad);
        halt(reason);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* the serial console: one line at a time */
    char *boot_argv[64];
    if (argc >= (int)(sizeof boot_argv / sizeof boot_argv[0])) {
        usage("too many arguments");
    }
    memcpy(boot_argv, argv, (size_t)(argc + 1) * sizeof *argv);
    s_host.boot_argv = boot_argv;
    s_host.started_ms = monotonic_ms();
    host_thing_init();
    parse_options(argc, argv, &s_host.options);
    if (s_host.options.ota_dir != NULL) {
        char why[320];
        if (!host_ota_boot(&s_host.ota, s_host.options.ota_dir, boot_argv, why, sizeof why)) {
            halt(why);
        }
        printf("host: firmware version %s\n", host_ota_running_version());
    }
    load_ca(&s_host.options);
    load_triple(&s_host.options, &s_triple);
    configure_core(&s_host.options);
    for (unsigned i = 0; i < ALINK_SUBSCRIPTIONS; i++) {
        s_host.sub_mids[i] = -1;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();

    /* The host is on the network from the start, and its clock is the time source. */
    alink_event_t ev = {.type = ALINK_EV_NET_UP};
    feed(&ev);
    memset(&ev, 0, sizeof ev);
    ev.type = ALINK_EV_TIME_SYNCED;
    ev.u.time_synced.unix_ms = (uint64_t)((int64_t)wall_ms() + (int64_t)s_host.options.clock_skew_s * 1000);
    feed(&ev);

    uint64_t last_tick_ms = monotonic_ms();
    while (!s_stop) {
        if (s_host.mosq != NULL) {
            int rc = mosquitto_loop(s_host.mosq, (int)TICK_MS, 1);
            if (rc != MOSQ_ERR_SUCCESS) { /* the session is over, whatever ended it */
                report_disconnect();
                mosquitto_destroy(s_host.mosq);
                s_host.mosq = NULL;
            }
        } else {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = (long)TICK_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        drain_queue();
        poll_ota();
        drain_queue();
        if (s_host.options.stdin_commands) {
            s_host.options.stdin_commands = host_thing_read_stdin();
        }
        host_thing_post_events(&s_host.core, monotonic_ms());
        if (monotonic_ms() - last_tick_ms >= TICK_MS) {
            last_tick_ms = monotonic_ms();
            host_thing_refresh();
            memset(&ev, 0, sizeof ev);
            ev.type = ALINK_EV_TICK;
            ev.u.tick.rssi_dbm = 0;
            ev.u.tick.free_heap_bytes = 0;
            feed(&ev);
            drain_queue();
        }
    }
    host_ota_fetch_stop();
    mqtt_close();
    mosquitto_lib_cleanup();
    if (s_host.options.ca_path != NULL) {
        free(s_host.ca_pem);
    }
    memset(&s_triple, 0, sizeof s_triple);
    printf("host: stopped\n");
    return 0;
}
