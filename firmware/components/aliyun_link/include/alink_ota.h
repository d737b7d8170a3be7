/*
 * Over-the-air updates the way Alibaba Cloud IoT Platform drives them (OTA documentation, "OTA upgrade"
 * topics; the same topics as Alibaba's Link SDK C v4 ota component):
 *   up   /ota/device/inform/{pk}/{dn}    {"id":"1","params":{"version":"<running>","module":"default"}}
 *   down /ota/device/upgrade/{pk}/{dn}   {"code":"1000","data":{"size":N,"sign":"..","signMethod":"SHA256"|"Md5",
 *                                         "md5":"..","url":"https://..","version":"..","module":"default",
 *                                         "extData":{}},"id":..,"message":"success"}
 *   up   /ota/device/progress/{pk}/{dn}  {"id":"2","params":{"step":"1".."100"|"-1".."-4","desc":"..",
 *                                         "module":"default"}}
 *
 * Log lines (ALINK_ACT_LOG, as in aliyun_link.h):
 *   aliyun: ota inform version=<running version>       (each time online)
 *   aliyun: ota begin version=<v> size=<bytes>
 *   aliyun: ota progress <n>%                          (when a progress step is due)
 *   aliyun: ota verified: restarting into version=<v>
 *   aliyun: ota refused: <verdict text>                (alink_ota_verdict_text)
 *   aliyun: ota failed: step <-1..-4>: <desc>          descs: download failed, write failed, cannot switch
 *                                                      slots, sign mismatch, size mismatch, image larger
 *                                                      than announced
 *
 * This header holds what needs no core: the parsed upgrade message, its checks, and the per-core OTA
 * state that alink_t embeds. The core drives the update (aliyun_link.h: ALINK_ACT_OTA_*, ALINK_EV_OTA_*).
 *
 * Why a verdict enum of its own and not alink_status_t: these are the reasons an upgrade is refused,
 * each logged and posted as a progress desc; they are not failures of a function call.
 */
#ifndef ALINK_OTA_H
#define ALINK_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALINK_OTA_MESSAGE_MAX 2048u /* an upgrade message; OSS-signed URLs run to several hundred bytes */
#define ALINK_OTA_URL_MAX 1024u     /* characters, without the NUL */
#define ALINK_OTA_VERSION_MAX 64u   /* characters, without the NUL */
#define ALINK_OTA_SIGN_MAX 64u      /* hex digits of a SHA-256; an MD5 has 32 */
#define ALINK_OTA_TOPIC_SIZE 160u
#define ALINK_OTA_STEP_PERCENT 5u   /* progress posts at most every 5 % ... */
#define ALINK_OTA_STEP_MS 1000u     /* ... and at most once a second */

/* Progress steps below 1 (Alibaba's OTA documentation). */
typedef enum {
    ALINK_OTA_STEP_UPDATE_FAILED = -1,
    ALINK_OTA_STEP_DOWNLOAD_FAILED = -2,
    ALINK_OTA_STEP_VERIFY_FAILED = -3,
    ALINK_OTA_STEP_WRITE_FAILED = -4,
} alink_ota_step_t;

typedef enum {
    ALINK_OTA_SIGN_SHA256 = 0,
    ALINK_OTA_SIGN_MD5,
} alink_ota_sign_method_t;

typedef enum {
    ALINK_OTA_ACCEPTED = 0,
    ALINK_OTA_TOO_LARGE,      /* the message is over ALINK_OTA_MESSAGE_MAX bytes */
    ALINK_OTA_NOT_JSON,       /* not a JSON object */
    ALINK_OTA_NESTING,        /* nested deeper than ALINK_JSON_DEPTH_MAX */
    ALINK_OTA_BAD_CODE,       /* "code" is not the string "1000" */
    ALINK_OTA_NO_DATA,        /* no "data" object */
    ALINK_OTA_BAD_SIZE,       /* "size" is not an integer in 1..UINT32_MAX */
    ALINK_OTA_BAD_SIGN_METHOD,/* "signMethod" is neither "SHA256" nor "Md5" */
    ALINK_OTA_BAD_SIGN,       /* "sign" is not the hex digest of that method */
    ALINK_OTA_BAD_URL,        /* "url" missing, too long, or holding a space or control character */
    ALINK_OTA_NOT_HTTPS,      /* "url" is not https:// (an image must not travel in the clear) */
    ALINK_OTA_BAD_VERSION,    /* "version" missing, empty, too long, or holding '"', '\' or a control char */
    ALINK_OTA_BAD_MODULE,     /* "module" given and not "default" (this device has one module) */
    ALINK_OTA_NO_SPACE,       /* "size" is larger than the passive slot */
    ALINK_OTA_SAME_VERSION,   /* "version" is the running version */
    ALINK_OTA_BUSY,           /* an update is already running */
    ALINK_OTA_DISABLED,       /* the shell configured no running version, so OTA is off */
} alink_ota_verdict_t;

typedef struct {
    uint32_t size;
    alink_ota_sign_method_t sign_method;
    char sign[ALINK_OTA_SIGN_MAX + 1]; /* lower-case hex */
    char url[ALINK_OTA_URL_MAX + 1];
    char version[ALINK_OTA_VERSION_MAX + 1];
} alink_ota_upgrade_t;

/* Parses and checks one upgrade message's own fields (not the slot size, the running version or
 * whether an update runs: the core checks those). *out is filled only on ALINK_OTA_ACCEPTED. */
alink_ota_verdict_t alink_ota_parse_upgrade(const char *payload, size_t len, alink_ota_upgrade_t *out);

/* A short English phrase, also the "desc" posted when a push is refused. */
const char *alink_ota_verdict_text(alink_ota_verdict_t verdict);

/* A version string the core accepts (for the shell's running version as for a pushed one). */
bool alink_ota_version_valid(const char *version);

/* The OTA part of alink_t; fields are private. */
typedef struct {
    bool enabled;
    bool running;
    bool finishing;     /* verified; the shell switches slots and restarts */
    bool confirmed;     /* ALINK_ACT_OTA_CONFIRM sent since start */
    uint8_t last_step;  /* last progress percentage posted */
    uint64_t last_post_ms;
    uint32_t received_bytes;
    uint32_t slot_size;
    char running_version[ALINK_OTA_VERSION_MAX + 1];
    alink_ota_upgrade_t job;
    char topic_inform[ALINK_OTA_TOPIC_SIZE];
    char topic_upgrade[ALINK_OTA_TOPIC_SIZE];
    char topic_progress[ALINK_OTA_TOPIC_SIZE];
} alink_ota_t;

#ifdef __cplusplus
}
#endif

#endif /* ALINK_OTA_H */
