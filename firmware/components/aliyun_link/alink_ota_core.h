/* The OTA part of the core, called from aliyun_link.c only (component-private; the contract for the
 * shells is aliyun_link.h). Each function is one hook: start, online, a message, an OTA event. */
#ifndef ALINK_OTA_CORE_H
#define ALINK_OTA_CORE_H

#include "aliyun_link.h"

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* One core log line (ALINK_ACT_LOG); lines longer than the core's buffer are cut: a log line is never worth
 * an error. Shared by the core's parts so they print alike. */
void PRINTF_LIKE(2, 3) alink_core_log(alink_t *core, const char *fmt, ...);

/* Builds the OTA topics and checks the running version; ALINK_ERR_CONFIG if either is refused. */
alink_status_t alink_ota_init(alink_t *core);

/* The upgrade topic to subscribe to, or NULL when OTA is off. */
const char *alink_ota_subscription(const alink_t *core);

/* Online (all SUBACKs): inform the platform of the running version, confirm the image once per start. */
void alink_ota_online(alink_t *core, uint64_t now_ms);

/* Handles the message if it is on the upgrade topic; false when the topic is not OTA's. */
bool alink_ota_message(alink_t *core, const alink_event_t *event);

/* ALINK_EV_OTA_PROGRESS, _DOWNLOADED and _FAILED. */
void alink_ota_event(alink_t *core, const alink_event_t *event);

#endif /* ALINK_OTA_CORE_H */
