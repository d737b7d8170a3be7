#include "device_triple.h"

#include <stdio.h>
#include <string.h>

#include "nvs.h"
#include "nvs_flash.h"
#include "sdkconfig.h"
#if CONFIG_ALIYUN_NVS_FLASH_ENC || CONFIG_ALIYUN_NVS_HMAC
#include "nvs_sec_provider.h"
#endif

#define PARTITION CONFIG_ALIYUN_NVS_PARTITION
#if CONFIG_ALIYUN_NVS_PLAIN
#define KEYS_HINT ""
#else
#define KEYS_HINT " (or the NVS keys do not match the image)"
#endif

static esp_err_t init_partition(char *why, size_t why_size)
{
#if CONFIG_ALIYUN_NVS_FLASH_ENC || CONFIG_ALIYUN_NVS_HMAC
    nvs_sec_scheme_t *scheme = NULL;
    nvs_sec_cfg_t keys;
    esp_err_t err;
#if CONFIG_ALIYUN_NVS_FLASH_ENC
    nvs_sec_config_flash_enc_t scheme_cfg = NVS_SEC_PROVIDER_CFG_FLASH_ENC_DEFAULT();
    if (scheme_cfg.nvs_keys_part == NULL) {
        snprintf(why, why_size, "no nvs_keys partition in the partition table");
        return ESP_ERR_NOT_FOUND;
    }
    err = nvs_sec_provider_register_flash_enc(&scheme_cfg, &scheme);
#else
    nvs_sec_config_hmac_t scheme_cfg = NVS_SEC_PROVIDER_CFG_HMAC_DEFAULT();
    err = nvs_sec_provider_register_hmac(&scheme_cfg, &scheme);
#endif
    if (err == ESP_OK) {
        /* Read only: generating keys here would make the factory image unreadable for good. */
        err = nvs_flash_read_security_cfg_v2(scheme, &keys);
        if (err != ESP_OK) {
            memset(&keys, 0, sizeof keys); /* a partial read may have left key bytes on the stack */
            snprintf(why, why_size, "NVS encryption keys missing or unreadable (%s)", esp_err_to_name(err));
            return err;
        }
        err = nvs_flash_secure_init_partition(PARTITION, &keys);
        memset(&keys, 0, sizeof keys);
    }
#else
    esp_err_t err = nvs_flash_init_partition(PARTITION);
#endif
    if (err != ESP_OK) {
        snprintf(why, why_size, "NVS partition %s cannot be opened (%s)" KEYS_HINT, PARTITION, esp_err_to_name(err));
    }
    return err;
}

static esp_err_t read_str(nvs_handle_t h, const char *key, char *out, size_t out_size, char *why, size_t why_size)
{
    size_t len = out_size;
    esp_err_t err = nvs_get_str(h, key, out, &len);
    if (err == ESP_ERR_NVS_INVALID_LENGTH) {
        snprintf(why, why_size, "NVS key %s is longer than %u characters", key, (unsigned)(out_size - 1));
    } else if (err != ESP_OK) {
        snprintf(why, why_size, "NVS key %s missing in partition %s (%s)" KEYS_HINT, key, PARTITION,
                 esp_err_to_name(err));
    }
    return err;
}

esp_err_t device_triple_load(device_triple_t *out, char *why, size_t why_size)
{
    static const struct {
        const char *namespace_name;
        const char *keys[4]; /* product key, device name, secret, region (NULL: none) */
    } layouts[] = {
        {"aliyun", {"product_key", "device_name", "device_secret", "region"}},
        {"aliyun-key", {"ProductKey", "DeviceName", "DeviceSecret", NULL}},
    };
    nvs_handle_t h;
    memset(out, 0, sizeof *out);
    esp_err_t err = init_partition(why, why_size);
    if (err != ESP_OK) {
        return err;
    }
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        err = nvs_open_from_partition(PARTITION, layouts[i].namespace_name, NVS_READONLY, &h);
        if (err != ESP_OK) {
            continue;
        }
        char *fields[3] = {out->product_key, out->device_name, out->device_secret};
        size_t sizes[3] = {sizeof out->product_key, sizeof out->device_name, sizeof out->device_secret};
        for (int f = 0; f < 3 && err == ESP_OK; f++) {
            err = read_str(h, layouts[i].keys[f], fields[f], sizes[f], why, why_size);
        }
        if (err == ESP_OK && layouts[i].keys[3]) {
            size_t len = sizeof out->region;
            if (nvs_get_str(h, layouts[i].keys[3], out->region, &len) != ESP_OK) {
                out->region[0] = '\0'; /* optional */
            }
        }
        nvs_close(h);
        if (err != ESP_OK) {
            memset(out, 0, sizeof *out);
        }
        return err;
    }
    snprintf(why, why_size, "no device triple in NVS partition %s (namespace aliyun or aliyun-key)" KEYS_HINT,
             PARTITION);
    return ESP_ERR_NOT_FOUND;
}
