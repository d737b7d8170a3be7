/* Wi-Fi station implementation of net_connect.h, credentials from menuconfig (development). */
#include <stdio.h>
#include <string.h>

#include "esp_check.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_wifi.h"
#include "net_connect.h"

static const char *TAG = "net_wifi";
static net_connect_signal_fn s_signal;

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
        esp_wifi_connect();
    } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
        s_signal(false);
        esp_wifi_connect(); /* the driver paces its own retries; the core paces MQTT */
    } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
        s_signal(true);
    } else if (base == IP_EVENT && id == IP_EVENT_STA_LOST_IP) {
        s_signal(false);
    }
}

esp_err_t net_connect_start(net_connect_signal_fn signal)
{
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    wifi_config_t sta;

    s_signal = signal;
    if (esp_netif_create_default_wifi_sta() == NULL) {
        return ESP_FAIL;
    }
    ESP_RETURN_ON_ERROR(esp_wifi_init(&init), TAG, "esp_wifi_init");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, on_event, NULL, NULL), TAG, "esp_event_handler_instance_register");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, on_event, NULL, NULL), TAG, "esp_event_handler_instance_register");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_LOST_IP, on_event, NULL, NULL), TAG, "esp_event_handler_instance_register");

    memset(&sta, 0, sizeof sta);
    if (strlen(CONFIG_ALIYUN_WIFI_SSID) >= sizeof sta.sta.ssid ||
        strlen(CONFIG_ALIYUN_WIFI_PASSWORD) >= sizeof sta.sta.password) {
        ESP_LOGE(TAG, "Wi-Fi SSID or password too long for wifi_config_t");
        return ESP_ERR_INVALID_ARG;
    }
    memcpy(sta.sta.ssid, CONFIG_ALIYUN_WIFI_SSID, strlen(CONFIG_ALIYUN_WIFI_SSID));
    memcpy(sta.sta.password, CONFIG_ALIYUN_WIFI_PASSWORD, strlen(CONFIG_ALIYUN_WIFI_PASSWORD));
    ESP_RETURN_ON_ERROR(esp_wifi_set_mode(WIFI_MODE_STA), TAG, "esp_wifi_set_mode");
    ESP_RETURN_ON_ERROR(esp_wifi_set_config(WIFI_IF_STA, &sta), TAG, "esp_wifi_set_config");
    return esp_wifi_start();
}

esp_err_t net_connect_restart(void)
{
    esp_err_t err = esp_wifi_stop();
    if (err != ESP_OK) {
        return err;
    }
    return esp_wifi_start(); /* WIFI_EVENT_STA_START connects again */
}

int net_connect_rssi_dbm(void)
{
    int rssi = 0;
    return esp_wifi_sta_get_rssi(&rssi) == ESP_OK ? rssi : 0;
}
