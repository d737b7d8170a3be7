/*
 * The host device's OTA download: one thread fetches an https:// image into the passive slot file,
 * hashing what it writes (SHA-256 or MD5, OpenSSL EVP), resuming with an HTTP Range request after a
 * dropped connection, at most HOST_OTA_FETCH_ATTEMPTS connections in all. The main loop polls it and
 * turns what it sees into ALINK_EV_OTA_* events, so the core is still fed from one thread.
 */
#ifndef HOST_OTA_FETCH_H
#define HOST_OTA_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aliyun_link.h"

#define HOST_OTA_FETCH_ATTEMPTS 5u
#define HOST_OTA_FETCH_RETRY_MS 1000u
#define HOST_OTA_FETCH_TIMEOUT_S 5

typedef enum {
    HOST_OTA_FETCH_IDLE = 0,
    HOST_OTA_FETCH_RUNNING,
    HOST_OTA_FETCH_DONE,   /* digest_hex is set */
    HOST_OTA_FETCH_FAILED, /* step is set */
} host_ota_fetch_state_t;

typedef struct {
    host_ota_fetch_state_t state;
    uint32_t received_bytes;
    unsigned attempts;
    alink_ota_step_t step;
    char digest_hex[ALINK_OTA_SIGN_MAX + 1];
} host_ota_fetch_status_t;

/* Starts the download thread; false if one runs or the thread cannot start. ca_pem must outlive it. */
bool host_ota_fetch_start(const alink_action_t *begin, const char *slot_path, const char *ca_pem, size_t ca_len);

/* A snapshot of the download. After DONE or FAILED the thread is joined and the state is IDLE again. */
void host_ota_fetch_poll(host_ota_fetch_status_t *status);

/* Stops a running download (at exit) and joins the thread. */
void host_ota_fetch_stop(void);

#endif /* HOST_OTA_FETCH_H */
