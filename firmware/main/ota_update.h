/*
 * The ESP-IDF shell's OTA: the core's ALINK_ACT_OTA_* actions as esp_http_client + esp_ota_* calls.
 * A download task writes the image into the passive app slot (esp_ota_get_next_update_partition),
 * hashing what it writes (SHA-256 or MD5, as the core asked) and resuming with an HTTP Range request
 * after a dropped connection, at most CONFIG_ALIYUN_OTA_ATTEMPTS connections; it reports through
 * shell_post() as ALINK_EV_OTA_* events, so the core is still fed from the main task only. The new
 * slot boots pending verification (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE): the core's
 * ALINK_ACT_OTA_CONFIRM, sent once online, marks it valid; an image that never comes online is reset
 * by the task watchdog or the offline reboot and rolled back by the bootloader.
 */
#pragma once

#include <stdint.h>

#include "aliyun_link.h"

#ifdef __cplusplus
extern "C" {
#endif

/* esp_app_desc_t.version of the running image: the core's firmware_version. */
const char *ota_update_running_version(void);

/* The passive slot's size in bytes (0 when the partition table has no second app slot). */
uint32_t ota_update_slot_bytes(void);

/* Executes ALINK_ACT_OTA_BEGIN, _FINISH, _ABORT and _CONFIRM. */
void ota_update_action(const alink_action_t *action);

/* The digest of the last complete download (hex, NUL-terminated), for ALINK_EV_OTA_DOWNLOADED. */
const char *ota_update_digest_hex(void);

#ifdef __cplusplus
}
#endif
