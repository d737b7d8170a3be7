/*
 * The host device's flash for OTA, in an --ota-dir: two slot files (slot0, slot1: executables, the
 * device's own image), and a boot record `boot` ("slot=<0|1> state=<valid|pending|trying>"), written
 * by rename so a kill leaves the old or the new record, never half of one. Like ESP-IDF's otadata
 * with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE:
 *   valid    the slot boots;
 *   pending  a new image, never started: the next start marks it trying and runs it;
 *   trying   it started and has not come online yet: a start that finds it so rolls back to the
 *            other slot (the image never confirmed itself), as the bootloader does for
 *            ESP_OTA_IMG_PENDING_VERIFY.
 * A start is a process started from outside (the boot step runs); a slot started by the boot step is
 * told so through the environment and does not decide again.
 *
 * The image's version is a descriptor in the executable, as esp_app_desc_t is in an app image: the
 * marker HOST_OTA_DESC_MARKER followed by the version and NULs (HOST_OTA_VERSION_FIELD bytes);
 * tests make a "new version" by rewriting those bytes in a copy.
 */
#ifndef HOST_OTA_H
#define HOST_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOST_OTA_DESC_MARKER "ALINK_APP_DESC:v="
#define HOST_OTA_VERSION_FIELD 65u

typedef struct {
    char dir[256];
    int running_slot;      /* 0 or 1 */
    bool trying;           /* a new image on its first run: confirm it once online */
} host_ota_t;

/* The running image's version from its descriptor. */
const char *host_ota_running_version(void);

/*
 * The boot step, first thing in main. Creates dir and installs this executable as slot0 on the first
 * start; otherwise runs the slot the record names (exec, not returning) unless it is this process
 * already. Returns false with why filled when the directory cannot be used.
 */
bool host_ota_boot(host_ota_t *ota, const char *dir, char **argv, char *why, size_t why_size);

/* The passive slot's file path. */
void host_ota_passive_path(const host_ota_t *ota, char *out, size_t out_size);

/* The running image came online: a trying slot becomes valid. */
void host_ota_confirm(host_ota_t *ota);

/* The passive slot holds a verified image: record it pending and restart into it (exec). Returns
 * false (nothing changed) when the record cannot be written or the exec fails. */
bool host_ota_switch(host_ota_t *ota, char **argv);

/* Restart as a fresh start would (exec of the boot step); returns only if exec failed. */
void host_ota_restart(char **argv);

#endif /* HOST_OTA_H */
