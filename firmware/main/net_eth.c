/*
 * OpenCores Ethernet implementation of net_connect.h (CONFIG_ALIYUN_NET_OPENETH, which selects
 * CONFIG_ETH_USE_OPENETH): the MAC Espressif's QEMU emulates, since QEMU has no Wi-Fi. DHCP comes from
 * QEMU's user-mode network (guest 10.0.2.15, host 10.0.2.2). It signals exactly as net_wifi.c does, so
 * SNTP, MQTT and the core do not know which one ran. Not for real chips: they have no such MAC.
 * Driver wiring as in ESP-IDF v5.5 examples/common_components/protocol_examples_common/eth_connect.c.
 */
#include "sdkconfig.h"

#if !CONFIG_ETH_USE_OPENETH
#error "net_eth.c needs CONFIG_ETH_USE_OPENETH; main/CMakeLists.txt builds it only with CONFIG_ALIYUN_NET_OPENETH"
#endif

#include "esp_check.h"
#include "esp_eth.h"
#include "esp_eth_mac_openeth.h"
#include "esp_event.h"
#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "net_connect.h"

static const char *TAG = "net_eth";

/* QEMU emulates a DP83848C PHY behind the OpenCores MAC (esp_eth/src/openeth/esp_eth_mac_openeth.c), and its
 * link is up at once: a short auto-negotiation timeout keeps the boot quick, as in IDF's example. No PHY
 * constructor is built with the OpenCores MAC in both versions (esp_eth/CMakeLists.txt, CONFIG_ETH_USE_OPENETH):
 * v5.5 compiles only esp_eth_phy_dp83848.c there (the generic driver only with the ESP32 EMAC), v6.0 only
 * esp_eth_phy_generic.c (it moved the chip-specific drivers to esp-eth-drivers). */
#define OPENETH_AUTONEGO_TIMEOUT_MS 100

static net_connect_signal_fn s_signal;
static esp_eth_handle_t s_eth;

static void on_event(void *arg, esp_event_base_t base, int32_t id, void *data)
{
    (void)arg;
    (void)data;
    if (base == ETH_EVENT && id == ETHERNET_EVENT_CONNECTED) {
        ESP_LOGI(TAG, "link up");
    } else if (base == ETH_EVENT && id == ETHERNET_EVENT_DISCONNECTED) {
        ESP_LOGW(TAG, "link down");
        s_signal(false);
    } else if (base == IP_EVENT && id == IP_EVENT_ETH_GOT_IP) {
        s_signal(true);
    } else if (base == IP_EVENT && id == IP_EVENT_ETH_LOST_IP) {
        s_signal(false);
    }
}

esp_err_t net_connect_start(net_connect_signal_fn signal)
{
    esp_netif_config_t netif_config = ESP_NETIF_DEFAULT_ETH();
    eth_mac_config_t mac_config = ETH_MAC_DEFAULT_CONFIG();
    eth_phy_config_t phy_config = ETH_PHY_DEFAULT_CONFIG();

    s_signal = signal;
    esp_netif_t *netif = esp_netif_new(&netif_config);
    if (netif == NULL) {
        return ESP_FAIL;
    }
    phy_config.autonego_timeout_ms = OPENETH_AUTONEGO_TIMEOUT_MS;
    esp_eth_mac_t *mac = esp_eth_mac_new_openeth(&mac_config);
#if ESP_IDF_VERSION_MAJOR >= 6
    esp_eth_phy_t *phy = esp_eth_phy_new_generic(&phy_config);
#else
    esp_eth_phy_t *phy = esp_eth_phy_new_dp83848(&phy_config);
#endif
    if (mac == NULL || phy == NULL) {
        ESP_LOGE(TAG, "no OpenCores MAC or PHY instance (out of memory)");
        return ESP_ERR_NO_MEM;
    }
    esp_eth_config_t eth_config = ETH_DEFAULT_CONFIG(mac, phy);
    ESP_RETURN_ON_ERROR(esp_eth_driver_install(&eth_config, &s_eth), TAG, "esp_eth_driver_install");
    esp_eth_netif_glue_handle_t glue = esp_eth_new_netif_glue(s_eth);
    if (glue == NULL) {
        return ESP_FAIL;
    }
    ESP_RETURN_ON_ERROR(esp_netif_attach(netif, glue), TAG, "esp_netif_attach");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(ETH_EVENT, ESP_EVENT_ANY_ID, on_event, NULL, NULL), TAG,
                        "esp_event_handler_instance_register");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_ETH_GOT_IP, on_event, NULL, NULL), TAG,
                        "esp_event_handler_instance_register");
    ESP_RETURN_ON_ERROR(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_ETH_LOST_IP, on_event, NULL, NULL), TAG,
                        "esp_event_handler_instance_register");
    return esp_eth_start(s_eth);
}

esp_err_t net_connect_restart(void)
{
    esp_err_t err = esp_eth_stop(s_eth);
    if (err != ESP_OK) {
        return err;
    }
    return esp_eth_start(s_eth); /* link up again -> DHCP -> IP_EVENT_ETH_GOT_IP */
}

int net_connect_rssi_dbm(void)
{
    return 0; /* no radio: "unknown" per net_connect.h */
}
