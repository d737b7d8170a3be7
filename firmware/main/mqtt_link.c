#include "mqtt_link.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "aliyun_root_ca.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "mqtt_client.h"
#include "shell_events.h"

/* esp-mqtt's receive buffer holds a whole inbound command (see alink_json.h); esp-mqtt's Kconfig ignores
 * CONFIG_MQTT_BUFFER_SIZE unless MQTT_USE_CUSTOM_CONFIG is set (then the default is 1024). */
#if !defined(CONFIG_MQTT_USE_CUSTOM_CONFIG) || !defined(CONFIG_MQTT_BUFFER_SIZE)
#error "set CONFIG_MQTT_USE_CUSTOM_CONFIG=y and CONFIG_MQTT_BUFFER_SIZE (sdkconfig.defaults): esp-mqtt ignores the size otherwise"
#endif
_Static_assert(CONFIG_MQTT_BUFFER_SIZE == ALINK_MQTT_BUFFER_SIZE,
               "CONFIG_MQTT_BUFFER_SIZE must equal ALINK_MQTT_BUFFER_SIZE (alink_json.h), the core's inbound limit");

static const char *TAG = "mqtt_link";
/* One esp-mqtt client for the device's life: a reconnect gives it the new password (esp_mqtt_set_config)
 * and wakes it (esp_mqtt_client_reconnect). Destroying it per attempt made the main task wait in
 * esp_mqtt_client_stop() until the MQTT task left its reconnect wait (reconnect_timeout_ms / 2, 5 s by
 * default), between the core's "mqtt disconnected" and its "reconnecting in" lines, with the task
 * watchdog running. */
static esp_mqtt_client_handle_t s_client;
static _Atomic uint32_t s_generation;
/* Set by the MQTT task when its session ended (MQTT_EVENT_DISCONNECTED: esp-mqtt waits in
 * MQTT_STATE_WAIT_RECONNECT, auto-reconnect off), cleared by the main task when it reconnects. */
static _Atomic bool s_waiting;
/* MQTT task only: what the MQTT_EVENT_ERROR before a MQTT_EVENT_DISCONNECTED said about the certificate. */
static alink_cert_refusal_t s_refusal;

uint32_t mqtt_link_generation(void)
{
    return s_generation;
}

static void post(alink_event_type_t type, const esp_mqtt_event_t *e)
{
    shell_event_t ev = {.type = type, .mqtt_generation = s_generation, .at_us = esp_timer_get_time(), .slot = -1};
    if (e && type == ALINK_EV_MQTT_REFUSED) {
        ev.connack_code = (int)e->error_handle->connect_return_code;
    } else if (e && type == ALINK_EV_SUBACK) {
        ev.msg_id = e->msg_id;
        ev.granted = e->error_handle->error_type != MQTT_ERROR_TYPE_SUBSCRIBE_FAILED;
    } else if (type == ALINK_EV_MQTT_DISCONNECTED) {
        ev.cert_refusal = s_refusal;
        s_refusal = ALINK_CERT_ACCEPTED;
    }
    (void)shell_post(&ev);
}

/* Only the first MQTT_EVENT_DATA of a message carries its topic; a message split over several
 * events (longer than CONFIG_MQTT_BUFFER_SIZE) or over ALINK_INBOUND_MAX is reported too large. */
static void post_message(const esp_mqtt_event_t *e)
{
    int slot;
    if (e->current_data_offset != 0) {
        return;
    }
    shell_message_t *m = shell_message_claim(&slot);
    if (!m) {
        ESP_LOGW(TAG, "message dropped: all %s slots busy", "inbound");
        return;
    }
    size_t topic_len = e->topic_len > 0 ? (size_t)e->topic_len : 0;
    size_t data_len = e->data_len > 0 ? (size_t)e->data_len : 0;
    m->too_large = e->data_len != e->total_data_len || data_len > sizeof m->payload;
    if (topic_len > sizeof m->topic) {
        topic_len = sizeof m->topic; /* cannot match a subscribed topic; the core says so */
    }
    memcpy(m->topic, e->topic, topic_len);
    m->topic_len = topic_len;
    m->payload_len = m->too_large ? 0 : data_len;
    if (!m->too_large) {
        memcpy(m->payload, e->data, data_len);
    }
    shell_event_t ev = {.type = ALINK_EV_MESSAGE, .mqtt_generation = s_generation, .at_us = esp_timer_get_time(),
                        .slot = slot};
    if (!shell_post(&ev)) {
        shell_message_release(slot);
    }
}

static void on_mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    const esp_mqtt_event_t *e = data;
    (void)arg;
    (void)base;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        post(ALINK_EV_MQTT_CONNECTED, e);
        break;
    case MQTT_EVENT_DISCONNECTED:
        post(ALINK_EV_MQTT_DISCONNECTED, e); /* first: it must carry the generation of the ended attempt */
        s_waiting = true;
        break;
    case MQTT_EVENT_ERROR:
        /* A refused CONNACK or a failed TLS handshake comes as an error first, then MQTT_EVENT_DISCONNECTED.
         * esp-tls hands over mbedtls' handshake error and verify flags; the flags may be 0 when no peer
         * certificate was parsed, the handshake error (-0x2700) still says it was the certificate. esp-tls
         * stores that error negated (esp_tls_mbedtls.c: ESP_INT_EVENT_TRACKER_CAPTURE(..., -ret)): 0x2700. */
        if (e->error_handle->error_type == MQTT_ERROR_TYPE_CONNECTION_REFUSED) {
            post(ALINK_EV_MQTT_REFUSED, e);
        } else if (e->error_handle->error_type == MQTT_ERROR_TYPE_TCP_TRANSPORT) {
            s_refusal = alink_cert_refusal_from_mbedtls(-e->error_handle->esp_tls_stack_err,
                                                        (uint32_t)e->error_handle->esp_tls_cert_verify_flags);
        }
        break;
    case MQTT_EVENT_SUBSCRIBED:
        post(ALINK_EV_SUBACK, e);
        break;
    case MQTT_EVENT_DATA:
        post_message(e);
        break;
    default:
        break;
    }
}

void mqtt_link_disconnect(void)
{
    /* Non-blocking: the MQTT task sends DISCONNECT, closes the transport and waits for a reconnect.
     * A client still connecting closes the session as soon as it is up. */
    if (s_client && esp_mqtt_client_disconnect(s_client) != ESP_OK) {
        ESP_LOGW(TAG, "esp-mqtt refused to disconnect");
    }
}

static void report_failure(const char *what)
{
    ESP_LOGE(TAG, "esp-mqtt client could not %s", what);
    s_waiting = false;
    shell_event_t ev = {.type = ALINK_EV_MQTT_DISCONNECTED, .mqtt_generation = s_generation,
                        .at_us = esp_timer_get_time(), .slot = -1};
    (void)shell_post(&ev);
}

void mqtt_link_connect(const alink_action_t *a)
{
    const esp_mqtt_client_config_t cfg = {
        .broker.address.hostname = a->u.connect.host,
        .broker.address.port = a->u.connect.port,
        .broker.address.transport = a->u.connect.tls ? MQTT_TRANSPORT_OVER_SSL : MQTT_TRANSPORT_OVER_TCP,
        .broker.verification.certificate = aliyun_root_ca_pem,
        .broker.verification.certificate_len = aliyun_root_ca_pem_len,
        .broker.verification.skip_cert_common_name_check = false, /* the host name must match */
        .credentials.username = a->u.connect.username,
        .credentials.client_id = a->u.connect.client_id,
        .credentials.authentication.password = a->u.connect.password,
        .session.keepalive = (int)a->u.connect.keepalive_s,
        .network.disable_auto_reconnect = true, /* the core owns the retry policy */
    };
    if (s_client == NULL) {
        s_generation++;
        s_client = esp_mqtt_client_init(&cfg); /* copies host, username, client id and password */
        if (s_client == NULL) {
            report_failure("be created");
        } else if (esp_mqtt_client_register_event(s_client, MQTT_EVENT_ANY, on_mqtt_event, NULL) != ESP_OK ||
                   esp_mqtt_client_start(s_client) != ESP_OK) {
            report_failure("start");
        }
        return;
    }
    if (s_waiting) {
        /* The usual case: the last session ended and the MQTT task waits, holding no lock. */
        s_waiting = false;
        s_generation++; /* events of the previous attempt, still queued, are stale */
        if (esp_mqtt_set_config(s_client, &cfg) != ESP_OK || esp_mqtt_client_reconnect(s_client) != ESP_OK) {
            report_failure("reconnect");
        }
        return;
    }
    /* The core gave up an attempt esp-mqtt is still making (connect timed out): stop the task (this waits
     * for its current step), then start it with the new configuration. */
    (void)esp_mqtt_client_stop(s_client);
    s_generation++; /* after the stop: whatever the old attempt posted is stale */
    if (esp_mqtt_set_config(s_client, &cfg) != ESP_OK || esp_mqtt_client_start(s_client) != ESP_OK) {
        report_failure("restart");
    }
}

int mqtt_link_subscribe(const char *topic, int qos)
{
    return s_client ? esp_mqtt_client_subscribe_single(s_client, topic, qos) : -1;
}

void mqtt_link_publish(const char *topic, const char *payload, size_t len, int qos)
{
    if (s_client && esp_mqtt_client_publish(s_client, topic, payload, (int)len, qos, 0) < 0) {
        ESP_LOGW(TAG, "publish to %s failed", topic);
    }
}
