/*
 * The ESP-IDF shell. Start-up: factory NVS (triple) -> default NVS -> LED -> core -> network and
 * SNTP -> event loop. Every IDF callback only queues a shell_event_t; this task turns each into an
 * alink_event_t, and executes the core's actions (emit()). No behaviour lives here: log lines,
 * retry policy, commands and payloads all come from components/aliyun_link; the product's own
 * properties, service and event from its thing model and thing_app.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "aliyun_link.h"
#include "device_triple.h"
#include "driver/gpio.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_netif_sntp.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/task.h"
#include "mqtt_link.h"
#include "net_connect.h"
#include "nvs_flash.h"
#include "ota_update.h"
#include "sdkconfig.h"
#include "shell_events.h"
#include "thing_app.h"

/* Kconfig ranges already hold these; the asserts keep a hand-edited sdkconfig honest. */
_Static_assert(CONFIG_ALIYUN_KEEPALIVE_S >= ALINK_KEEPALIVE_MIN_S && CONFIG_ALIYUN_KEEPALIVE_S <= ALINK_KEEPALIVE_MAX_S,
               "CONFIG_ALIYUN_KEEPALIVE_S must be 30..1200: the broker refuses other keep-alives");
_Static_assert(CONFIG_ALIYUN_BACKOFF_CAP_MS >= CONFIG_ALIYUN_BACKOFF_BASE_MS,
               "CONFIG_ALIYUN_BACKOFF_CAP_MS must be at least CONFIG_ALIYUN_BACKOFF_BASE_MS");

#define EVENT_QUEUE_LENGTH 16
#define MESSAGE_SLOTS 3
#define TICK_MS 1000

static const char *TAG = "aliyun_shell";

static QueueHandle_t s_events;
static QueueHandle_t s_free_slots;
static shell_message_t s_messages[MESSAGE_SLOTS];
static alink_t s_core; /* a few KB: static, not on the stack */
static device_triple_t s_triple;
#if CONFIG_ALIYUN_CLIENT_ID_MAC
static char s_client_id[13];
#endif
static int s_sub_msg_ids[ALINK_SUBSCRIPTIONS];

bool shell_post(const shell_event_t *event)
{
    if (xQueueSend(s_events, event, 0) != pdTRUE) {
        ESP_LOGW(TAG, "event queue full: event %d dropped", (int)event->type);
        return false;
    }
    return true;
}

shell_message_t *shell_message_claim(int *slot)
{
    return xQueueReceive(s_free_slots, slot, 0) == pdTRUE ? &s_messages[*slot] : NULL;
}

void shell_message_release(int slot)
{
    (void)xQueueSend(s_free_slots, &slot, 0);
}

static uint64_t now_ms(void)
{
    return (uint64_t)(esp_timer_get_time() / 1000);
}

/* Never returns: a device without a usable triple must not try to connect. */
static void halt(const char *reason)
{
    for (;;) {
        printf("aliyun: halted: %s\n", reason);
        vTaskDelay(pdMS_TO_TICKS(10000));
    }
}

static void on_net_signal(bool have_ip)
{
    shell_event_t ev = {.type = have_ip ? ALINK_EV_NET_UP : ALINK_EV_NET_DOWN, .at_us = esp_timer_get_time(),
                        .slot = -1};
    (void)shell_post(&ev);
}

static void on_time_sync(struct timeval *tv)
{
    shell_event_t ev = {.type = ALINK_EV_TIME_SYNCED, .at_us = esp_timer_get_time(), .slot = -1};
    ev.unix_ms = (uint64_t)tv->tv_sec * 1000u + (uint64_t)tv->tv_usec / 1000u;
    (void)shell_post(&ev);
}

static void emit(void *ctx, const alink_action_t *a)
{
    (void)ctx;
    switch (a->type) {
    case ALINK_ACT_LOG:
        printf("%s\n", a->u.log.text);
        break;
    case ALINK_ACT_CONNECT:
        mqtt_link_connect(a);
        break;
    case ALINK_ACT_DISCONNECT:
        mqtt_link_disconnect();
        break;
    case ALINK_ACT_SUBSCRIBE: {
        int msg_id = mqtt_link_subscribe(a->u.subscribe.topic, a->u.subscribe.qos);
        if (msg_id < 0) { /* answer the core as the broker would have: refused (a unique fake id) */
            msg_id = -100 - (int)a->u.subscribe.index;
        }
        s_sub_msg_ids[a->u.subscribe.index] = msg_id;
        if (msg_id <= -100) {
            shell_event_t ev = {.type = ALINK_EV_SUBACK, .mqtt_generation = mqtt_link_generation(),
                                .at_us = esp_timer_get_time(), .msg_id = msg_id, .granted = false, .slot = -1};
            (void)shell_post(&ev);
        }
        break;
    }
    case ALINK_ACT_PUBLISH:
        mqtt_link_publish(a->u.publish.topic, a->u.publish.payload, a->u.publish.payload_len, a->u.publish.qos);
        break;
    case ALINK_ACT_SET_LED:
        gpio_set_level((gpio_num_t)CONFIG_ALIYUN_LED_GPIO, a->u.set_led.on ? 1u : 0u);
        break;
    case ALINK_ACT_RESTART_NETWORK:
        if (net_connect_restart() != ESP_OK) {
            ESP_LOGW(TAG, "network restart failed");
        }
        break;
    case ALINK_ACT_REBOOT:
        fflush(stdout);
        esp_restart();
        break;
    case ALINK_ACT_OTA_BEGIN:
    case ALINK_ACT_OTA_FINISH:
    case ALINK_ACT_OTA_ABORT:
    case ALINK_ACT_OTA_CONFIRM:
        ota_update_action(a);
        break;
    }
}

/* Translates a queued shell event into a core event; false when it is stale. */
static bool translate(const shell_event_t *in, alink_event_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = in->type;
    out->now_ms = now_ms();
    out->random = esp_random();
    if (in->mqtt_generation != 0 && in->mqtt_generation != mqtt_link_generation()) {
        return false; /* from a client already destroyed */
    }
    switch (in->type) {
    case ALINK_EV_TIME_SYNCED:
        out->u.time_synced.unix_ms = in->unix_ms + (out->now_ms - (uint64_t)(in->at_us / 1000));
        break;
    case ALINK_EV_MQTT_REFUSED:
        out->u.connack_code = in->connack_code;
        break;
    case ALINK_EV_MQTT_DISCONNECTED:
        out->u.cert_refusal = in->cert_refusal;
        break;
    case ALINK_EV_SUBACK:
        for (unsigned i = 0; i < ALINK_SUBSCRIPTIONS; i++) {
            if (s_sub_msg_ids[i] == in->msg_id) {
                out->u.suback.index = i;
                out->u.suback.granted = in->granted;
                return true;
            }
        }
        return false;
    case ALINK_EV_MESSAGE: {
        const shell_message_t *m = &s_messages[in->slot];
        out->u.message.topic = m->topic;
        out->u.message.topic_len = m->topic_len;
        out->u.message.payload = m->payload;
        out->u.message.payload_len = m->payload_len;
        out->u.message.too_large = m->too_large;
        break;
    }
    case ALINK_EV_OTA_PROGRESS:
    case ALINK_EV_OTA_DOWNLOADED:
    case ALINK_EV_OTA_FAILED:
        out->u.ota.received_bytes = in->ota_bytes;
        out->u.ota.digest_hex = ota_update_digest_hex();
        out->u.ota.step = (alink_ota_step_t)in->ota_step;
        break;
    default:
        break;
    }
    return true;
}

static void configure_core(void)
{
    alink_config_t cfg;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    alink_config_defaults(&cfg);
    cfg.product_key = s_triple.product_key;
    cfg.device_name = s_triple.device_name;
    cfg.device_secret = s_triple.device_secret;
#if CONFIG_ALIYUN_CLIENT_ID_MAC
    uint8_t mac[6];
    ESP_ERROR_CHECK(esp_read_mac(mac, ESP_MAC_BASE));
    if (alink_client_id_from_mac(mac, s_client_id, sizeof s_client_id)) {
        cfg.client_id = s_client_id;
    } else {
        printf("%s\n", ALINK_LOG_BLANK_MAC);
        cfg.client_id = s_triple.device_name;
    }
#else
    cfg.client_id = s_triple.device_name;
#endif
#if CONFIG_ALIYUN_SIGN_HMACSHA256
    cfg.sign_method = ALIYUN_SIGN_HMACSHA256;
#elif CONFIG_ALIYUN_SIGN_HMACMD5
    cfg.sign_method = ALIYUN_SIGN_HMACMD5;
#else
    cfg.sign_method = ALIYUN_SIGN_HMACSHA1;
#endif
#if CONFIG_ALIYUN_TIMESTAMP_FIXED
    cfg.timestamp_mode = ALINK_TIMESTAMP_FIXED;
#else
    cfg.timestamp_mode = ALINK_TIMESTAMP_CLOCK;
#endif
    cfg.secure_mode = 2; /* TLS only: securemode 3 is refused for products created after 2022-08-02 */
    cfg.region = s_triple.region[0] ? s_triple.region : CONFIG_ALIYUN_REGION;
    cfg.endpoint = CONFIG_ALIYUN_ENDPOINT;
    cfg.keepalive_s = CONFIG_ALIYUN_KEEPALIVE_S;
    cfg.backoff_base_ms = CONFIG_ALIYUN_BACKOFF_BASE_MS;
    cfg.backoff_cap_ms = CONFIG_ALIYUN_BACKOFF_CAP_MS;
    cfg.time_sync_timeout_ms = CONFIG_ALIYUN_TIME_SYNC_TIMEOUT_S * 1000u;
    cfg.post_period_ms = CONFIG_ALIYUN_POST_PERIOD_S * 1000u;
    cfg.restart_network_after_ms = CONFIG_ALIYUN_RESTART_NETWORK_AFTER_S * 1000u;
    cfg.reboot_after_ms = CONFIG_ALIYUN_REBOOT_AFTER_S * 1000u;
    cfg.firmware_version = ota_update_running_version();
    cfg.ota_slot_bytes = ota_update_slot_bytes();
    thing_app_configure(&cfg);
    alink_status_t st = alink_init(&s_core, &cfg, emit, NULL, &bad);
    if (st != ALINK_OK) {
        static const char *const fields[] = {"configuration", "product key", "device name", "device secret",
                                             "client id",     "timestamp",   "region",      "endpoint"};
        char reason[96];
        snprintf(reason, sizeof reason, "%s refused (%s)", (unsigned)bad < 8u ? fields[bad] : "configuration",
                 alink_strerror(st));
        halt(reason);
    }
}

static void init_default_nvs(void)
{
    /* Wi-Fi and PHY calibration data live in the default "nvs" partition. */
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);
}

void app_main(void)
{
    char why[128];
    if (device_triple_load(&s_triple, why, sizeof why) != ESP_OK) {
        halt(why);
    }
    init_default_nvs();

    ESP_ERROR_CHECK(gpio_reset_pin((gpio_num_t)CONFIG_ALIYUN_LED_GPIO));
    ESP_ERROR_CHECK(gpio_set_direction((gpio_num_t)CONFIG_ALIYUN_LED_GPIO, GPIO_MODE_OUTPUT));
    ESP_ERROR_CHECK(gpio_set_level((gpio_num_t)CONFIG_ALIYUN_LED_GPIO, 0));
    thing_app_start();

    s_events = xQueueCreate(EVENT_QUEUE_LENGTH, sizeof(shell_event_t));
    s_free_slots = xQueueCreate(MESSAGE_SLOTS, sizeof(int));
    if (!s_events || !s_free_slots) {
        halt("out of memory for the event queues");
    }
    for (int i = 0; i < MESSAGE_SLOTS; i++) {
        shell_message_release(i);
    }
    for (unsigned i = 0; i < ALINK_SUBSCRIPTIONS; i++) {
        s_sub_msg_ids[i] = -1;
    }
    configure_core();

    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    esp_sntp_config_t sntp = ESP_NETIF_SNTP_DEFAULT_CONFIG(CONFIG_ALIYUN_SNTP_SERVER);
#if CONFIG_LWIP_SNTP_MAX_SERVERS > 1
    if (CONFIG_ALIYUN_SNTP_SERVER_2[0] != '\0') {
        sntp.servers[1] = CONFIG_ALIYUN_SNTP_SERVER_2;
        sntp.num_of_servers = 2;
    }
#endif
    sntp.sync_cb = on_time_sync;
    ESP_ERROR_CHECK(esp_netif_sntp_init(&sntp));
    ESP_ERROR_CHECK(net_connect_start(on_net_signal));

    ESP_ERROR_CHECK(esp_task_wdt_add(NULL));
    uint64_t last_tick_ms = 0;
    for (;;) {
        shell_event_t in;
        alink_event_t ev;
        if (xQueueReceive(s_events, &in, pdMS_TO_TICKS(TICK_MS)) == pdTRUE) {
            if (translate(&in, &ev)) {
                (void)alink_handle(&s_core, &ev);
            }
            if (in.type == ALINK_EV_MESSAGE) {
                shell_message_release(in.slot);
            }
        }
        if (now_ms() - last_tick_ms >= TICK_MS) {
            last_tick_ms = now_ms();
            memset(&ev, 0, sizeof ev);
            ev.type = ALINK_EV_TICK;
            ev.now_ms = last_tick_ms;
            ev.random = esp_random();
            ev.u.tick.rssi_dbm = net_connect_rssi_dbm();
            ev.u.tick.free_heap_bytes = esp_get_free_heap_size();
            thing_app_before_tick();
            (void)alink_handle(&s_core, &ev);
            thing_app_after_tick(&s_core, last_tick_ms);
        }
        ESP_ERROR_CHECK(esp_task_wdt_reset());
    }
}
