/* The device triple from the factory NVS partition (written by `provision gen-nvs`). */
#pragma once

#include <stddef.h>

#include "aliyun_auth.h"
#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char product_key[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    char device_name[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char device_secret[ALIYUN_AUTH_DEVICE_SECRET_MAX + 1];
    char region[64]; /* empty when the image has none */
} device_triple_t;

/*
 * Opens CONFIG_ALIYUN_NVS_PARTITION (decrypting it with the configured scheme) and reads the
 * triple from namespace "aliyun" (product_key, device_name, device_secret, region), else from the
 * esp-aliyun layout (namespace "aliyun-key": ProductKey, DeviceName, DeviceSecret).
 * On failure `why` holds one line saying what is missing; the secret is never part of it.
 */
esp_err_t device_triple_load(device_triple_t *out, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif
