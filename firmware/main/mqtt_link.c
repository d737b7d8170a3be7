#include "mqtt_link.h"

#include <string.h>

#include "aliyun_root_ca.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "mqtt_client.h"
#include "shell_events.h"

static const char *TAG = "mqtt_link";
static esp_mqtt_client_handle_t s_client;
static uint32_t s_generation;

uint32_t mqtt_link_generation(void)
{
    return s_generation;
}

static void post(alink_event_type_t type, uint32_t generation, const esp_mqtt_event_t *e)
{
    shell_event_t ev = {.type = type, .mqtt_generation = generation, .at_us = esp_timer_get_time(), .slot = -1};
    if (e && type == ALINK_EV_MQTT_REFUSED) {
        ev.connack_code = (int)e->error_handle->connect_return_code;
    } else if (e && type == ALINK_EV_SUBACK) {
        ev.msg_id = e->msg_id;
        ev.granted = e->error_handle->error_type != MQTT_ERROR_TYPE_SUBSCRIBE_FAILED;
    }
    (void)shell_post(&ev);
}

/* Only the first MQTT_EVENT_DATA of a message carries its topic; a message split over several
 * events (longer than CONFIG_MQTT_BUFFER_SIZE) or over ALINK_INBOUND_MAX is reported too large. */
static void post_message(uint32_t generation, const esp_mqtt_event_t *e)
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
    shell_event_t ev = {.type = ALINK_EV_MESSAGE, .mqtt_generation = generation, .at_us = esp_timer_get_time(),
                        .slot = slot};
    if (!shell_post(&ev)) {
        shell_message_release(slot);
    }
}

static void on_mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    uint32_t generation = (uint32_t)(uintptr_t)arg;
    const esp_mqtt_event_t *e = data;
    (void)base;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        post(ALINK_EV_MQTT_CONNECTED, generation, e);
        break;
    case MQTT_EVENT_DISCONNECTED:
        post(ALINK_EV_MQTT_DISCONNECTED, generation, e);
        break;
    case MQTT_EVENT_ERROR:
        /* A refused CONNACK comes as an error first, then MQTT_EVENT_DISCONNECTED. */
        if (e->error_handle->error_type == MQTT_ERROR_TYPE_CONNECTION_REFUSED) {
            post(ALINK_EV_MQTT_REFUSED, generation, e);
        }
        break;
    case MQTT_EVENT_SUBSCRIBED:
        post(ALINK_EV_SUBACK, generation, e);
        break;
    case MQTT_EVENT_DATA:
        post_message(generation, e);
        break;
    default:
        break;
    }
}

void mqtt_link_disconnect(void)
{
    if (s_client) {
        esp_mqtt_client_destroy(s_client); /* stops the client task first */
        s_client = NULL;
    }
}

void mqtt_link_connect(const alink_action_t *a)
{
    mqtt_link_disconnect();
    s_generation++;
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
    s_client = esp_mqtt_client_init(&cfg); /* copies host, username, client id and password */
    if (s_client == NULL ||
        esp_mqtt_client_register_event(s_client, MQTT_EVENT_ANY, on_mqtt_event, (void *)(uintptr_t)s_generation) !=
            ESP_OK ||
        esp_mqtt_client_start(s_client) != ESP_OK) {
        ESP_LOGE(TAG, "esp-mqtt client could not start");
        mqtt_link_disconnect();
        post(ALINK_EV_MQTT_DISCONNECTED, s_generation, NULL);
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
