/* OTA on ESP-IDF; the contract is in ota_update.h. Checked against the ESP-IDF v5.5 and v6.0 headers
 * (app_update/esp_ota_ops.h, esp_http_client/esp_http_client.h, esp_app_format/esp_app_desc.h). */
#include "ota_update.h"

#include <stdio.h>
#include <string.h>

#include "aliyun_hash_stream.h"
#include "aliyun_root_ca.h"
#include "esp_app_desc.h"
#include "esp_http_client.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#include "shell_events.h"

#define CHUNK_BYTES 4096
#define TASK_STACK_BYTES 6144

static const char *TAG = "aliyun_ota";

typedef struct {
    char url[ALINK_OTA_URL_MAX + 1];
    uint32_t size;
    alink_ota_sign_method_t method;
    const esp_partition_t *slot;
    esp_ota_handle_t handle;
    bool open;     /* esp_ota_begin done, neither end nor abort yet */
    bool running;  /* the download task exists */
    aliyun_hash_stream_t digest;
    char digest_hex[ALINK_OTA_SIGN_MAX + 1];
    char chunk[CHUNK_BYTES];
} ota_job_t;

static ota_job_t s_job;

/* digest_hex takes every digest the stream makes (SHA-256's 64 digits and the NUL) */
_Static_assert(ALINK_OTA_SIGN_MAX >= ALIYUN_HASH_STREAM_HEX_MAX, "digest_hex is shorter than a SHA-256 in hex");

const char *ota_update_running_version(void)
{
    return esp_app_get_description()->version;
}

uint32_t ota_update_slot_bytes(void)
{
    const esp_partition_t *next = esp_ota_get_next_update_partition(NULL);
    return next ? next->size : 0u;
}

const char *ota_update_digest_hex(void)
{
    return s_job.digest_hex;
}

static void post(alink_event_type_t type, uint32_t bytes, alink_ota_step_t step)
{
    shell_event_t ev = {.type = type, .at_us = esp_timer_get_time(), .slot = -1, .ota_bytes = bytes,
                        .ota_step = (int)step};
    (void)shell_post(&ev);
}

/* (Re)opens the slot for writing from byte 0. */
static bool slot_restart(void)
{
    if (s_job.open) {
        (void)esp_ota_abort(s_job.handle);
        s_job.open = false;
    }
    if (esp_ota_begin(s_job.slot, OTA_WITH_SEQUENTIAL_WRITES, &s_job.handle) != ESP_OK) {
        return false;
    }
    s_job.open = true;
    aliyun_hash_stream_alg_t alg =
        s_job.method == ALINK_OTA_SIGN_MD5 ? ALIYUN_HASH_STREAM_MD5 : ALIYUN_HASH_STREAM_SHA256;
    return aliyun_hash_stream_start(&s_job.digest, alg) == 0;
}

typedef enum { ATTEMPT_DONE, ATTEMPT_DROPPED, ATTEMPT_WRITE_FAILED } attempt_t;

/* One connection: asks for the bytes from *received on, writes and hashes them. */
static attempt_t attempt(uint32_t *received)
{
    esp_http_client_config_t config = {
        .url = s_job.url,
        .cert_pem = aliyun_root_ca_pem,
        .timeout_ms = CONFIG_ALIYUN_OTA_TIMEOUT_MS,
        .buffer_size = 2048,
    };
    attempt_t result = ATTEMPT_DROPPED;
    char range[32];
    esp_http_client_handle_t client = esp_http_client_init(&config);
    if (client == NULL) {
        return ATTEMPT_DROPPED;
    }
    snprintf(range, sizeof range, "bytes=%u-", (unsigned)*received);
    if (esp_http_client_set_header(client, "Range", range) != ESP_OK ||
        esp_http_client_open(client, 0) != ESP_OK || esp_http_client_fetch_headers(client) < 0) {
        goto out;
    }
    int status = esp_http_client_get_status_code(client);
    if (status == 200 && *received > 0) {
        ESP_LOGW(TAG, "server ignored the range: starting over");
        if (!slot_restart()) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        *received = 0;
    } else if (status != 206 && !(status == 200 && *received == 0)) {
        ESP_LOGW(TAG, "http status %d", status);
        goto out;
    }
    unsigned last_percent = (unsigned)((uint64_t)*received * 100u / s_job.size);
    while (*received < s_job.size) {
        int want = (int)(s_job.size - *received < CHUNK_BYTES ? s_job.size - *received : CHUNK_BYTES);
        int n = esp_http_client_read(client, s_job.chunk, want);
        if (n <= 0) {
            goto out;
        }
        if (esp_ota_write(s_job.handle, s_job.chunk, (size_t)n) != ESP_OK) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        if (aliyun_hash_stream_update(&s_job.digest, s_job.chunk, (size_t)n) != 0) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        *received += (uint32_t)n;
        unsigned percent = (unsigned)((uint64_t)*received * 100u / s_job.size);
        if (percent != last_percent) { /* the core rate-limits posts; this bounds the queue's load */
            last_percent = percent;
            post(ALINK_EV_OTA_PROGRESS, *received, 0);
        }
    }
    result = ATTEMPT_DONE;
out:
    esp_http_client_close(client);
    esp_http_client_cleanup(client);
    return result;
}

static void download_task(void *unused)
{
    (void)unused;
    uint32_t received = 0;
    attempt_t result = slot_restart() ? ATTEMPT_DROPPED : ATTEMPT_WRITE_FAILED;
    for (unsigned n = 1; result == ATTEMPT_DROPPED && n <= CONFIG_ALIYUN_OTA_ATTEMPTS; n++) {
        if (n > 1) {
            printf("ota: connection lost at %u bytes: resuming (attempt %u of %u)\n", (unsigned)received, n,
                   (unsigned)CONFIG_ALIYUN_OTA_ATTEMPTS);
            vTaskDelay(pdMS_TO_TICKS(1000));
        }
        result = attempt(&received);
    }
    if (result == ATTEMPT_DONE &&
        aliyun_hash_stream_finish_hex(&s_job.digest, s_job.digest_hex, sizeof s_job.digest_hex) == 0) {
        post(ALINK_EV_OTA_DOWNLOADED, received, 0);
    } else {
        aliyun_hash_stream_abort(&s_job.digest);
        if (s_job.open) {
            (void)esp_ota_abort(s_job.handle);
            s_job.open = false;
        }
        post(ALINK_EV_OTA_FAILED, received,
             result == ATTEMPT_DROPPED ? ALINK_OTA_STEP_DOWNLOAD_FAILED : ALINK_OTA_STEP_WRITE_FAILED);
    }
    s_job.running = false;
    vTaskDelete(NULL);
}

static void begin(const alink_action_t *a)
{
    s_job.slot = esp_ota_get_next_update_partition(NULL);
    if (s_job.running || s_job.slot == NULL ||
        snprintf(s_job.url, sizeof s_job.url, "%s", a->u.ota_begin.url) >= (int)sizeof s_job.url) {
        post(ALINK_EV_OTA_FAILED, 0, ALINK_OTA_STEP_DOWNLOAD_FAILED);
        return;
    }
    s_job.size = a->u.ota_begin.size;
    s_job.method = a->u.ota_begin.sign_method;
    s_job.digest_hex[0] = '\0';
    s_job.running = true;
    if (xTaskCreate(download_task, "aliyun_ota", TASK_STACK_BYTES, NULL, tskIDLE_PRIORITY + 2, NULL) != pdPASS) {
        s_job.running = false;
        post(ALINK_EV_OTA_FAILED, 0, ALINK_OTA_STEP_DOWNLOAD_FAILED);
    }
}

static void finish(void)
{
    /* esp_ota_end also checks the image (header, chip, and the signature under secure boot) */
    esp_err_t err = s_job.open ? esp_ota_end(s_job.handle) : ESP_ERR_INVALID_STATE;
    s_job.open = false;
    if (err == ESP_OK) {
        err = esp_ota_set_boot_partition(s_job.slot);
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cannot switch slots: %s", esp_err_to_name(err));
        post(ALINK_EV_OTA_FAILED, 0, ALINK_OTA_STEP_UPDATE_FAILED);
        return;
    }
    fflush(stdout);
    esp_restart();
}

static void confirm(void)
{
    esp_ota_img_states_t state;
    if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &state) == ESP_OK &&
        state == ESP_OTA_IMG_PENDING_VERIFY) {
        if (esp_ota_mark_app_valid_cancel_rollback() == ESP_OK) {
            printf("ota: image %s confirmed\n", ota_update_running_version());
        } else {
            ESP_LOGE(TAG, "cannot mark the running image valid");
        }
    }
}

void ota_update_action(const alink_action_t *a)
{
    switch (a->type) {
    case ALINK_ACT_OTA_BEGIN:
        begin(a);
        break;
    case ALINK_ACT_OTA_FINISH:
        finish();
        break;
    case ALINK_ACT_OTA_ABORT:
        if (s_job.open) {
            (void)esp_ota_abort(s_job.handle);
            s_job.open = false;
        }
        break;
    case ALINK_ACT_OTA_CONFIRM:
        confirm();
        break;
    default:
        break;
    }
}
