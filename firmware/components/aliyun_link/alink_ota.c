/* The OTA update as events in, actions out; protocol in alink_ota.h, contract in aliyun_link.h. */
#include "alink_ota_core.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void ota_act(alink_t *c, alink_action_type_t type)
{
    alink_action_t a;
    memset(&a, 0, sizeof a);
    a.type = type;
    c->emit(c->emit_ctx, &a);
}

static uint32_t take_id(alink_t *c)
{
    uint32_t id = c->next_message_id;
    c->next_message_id = id == UINT32_MAX ? 1u : id + 1u;
    return id;
}

/* Posts only with a session: a post without one would be dropped by the shell anyway. */
static void ota_publish(alink_t *c, const char *topic, int n)
{
    if (n < 0 || (size_t)n >= sizeof c->payload || c->state != ALINK_STATE_ONLINE) {
        return;
    }
    alink_action_t a = {.type = ALINK_ACT_PUBLISH};
    a.u.publish.topic = topic;
    a.u.publish.payload = c->payload;
    a.u.publish.payload_len = (size_t)n;
    a.u.publish.qos = 0;
    c->emit(c->emit_ctx, &a);
}

/* desc is one of this file's own phrases, never text from a message. */
static void post_step(alink_t *c, int step, const char *desc)
{
    int n = snprintf(c->payload, sizeof c->payload,
                     "{\"id\":\"%" PRIu32 "\",\"params\":{\"step\":\"%d\",\"desc\":\"%s\",\"module\":\"default\"}}",
                     take_id(c), step, desc);
    ota_publish(c, c->ota.topic_progress, n);
}

alink_status_t alink_ota_init(alink_t *c)
{
    const alink_config_t *cfg = &c->config;
    alink_ota_t *o = &c->ota;
    memset(o, 0, sizeof *o);
    if (!cfg->firmware_version) {
        return ALINK_OK;
    }
    if (!alink_ota_version_valid(cfg->firmware_version)) {
        return ALINK_ERR_CONFIG;
    }
    static const char *const formats[] = {"/ota/device/inform/%s/%s", "/ota/device/upgrade/%s/%s",
                                          "/ota/device/progress/%s/%s"};
    char *topics[] = {o->topic_inform, o->topic_upgrade, o->topic_progress};
    for (size_t i = 0; i < 3u; i++) {
        int n = snprintf(topics[i], ALINK_OTA_TOPIC_SIZE, formats[i], cfg->product_key, cfg->device_name);
        if (n < 0 || (size_t)n >= ALINK_OTA_TOPIC_SIZE) {
            return ALINK_ERR_CONFIG;
        }
    }
    memcpy(o->running_version, cfg->firmware_version, strlen(cfg->firmware_version) + 1u);
    o->slot_size = cfg->ota_slot_bytes;
    o->enabled = true;
    return ALINK_OK;
}

const char *alink_ota_subscription(const alink_t *c)
{
    return c->ota.enabled ? c->ota.topic_upgrade : NULL;
}

void alink_ota_online(alink_t *c, uint64_t now_ms)
{
    (void)now_ms;
    alink_ota_t *o = &c->ota;
    if (!o->enabled) {
        return;
    }
    if (!o->confirmed) {
        o->confirmed = true;
        ota_act(c, ALINK_ACT_OTA_CONFIRM);
    }
    int n = snprintf(c->payload, sizeof c->payload,
                     "{\"id\":\"%" PRIu32 "\",\"params\":{\"version\":\"%s\",\"module\":\"default\"}}", take_id(c),
                     o->running_version);
    ota_publish(c, o->topic_inform, n);
    alink_core_log(c, "aliyun: ota inform version=%s", o->running_version);
}

static alink_ota_verdict_t check_job(const alink_ota_t *o, const alink_ota_upgrade_t *job)
{
    if (job->size > o->slot_size) {
        return ALINK_OTA_NO_SPACE;
    }
    if (strcmp(job->version, o->running_version) == 0) {
        return ALINK_OTA_SAME_VERSION;
    }
    return ALINK_OTA_ACCEPTED;
}

bool alink_ota_message(alink_t *c, const alink_event_t *ev)
{
    alink_ota_t *o = &c->ota;
    alink_ota_upgrade_t job;
    if (!o->enabled || !alink_topic_matches(o->topic_upgrade, ev->u.message.topic, ev->u.message.topic_len)) {
        return false;
    }
    if (o->running) {
        /* no progress post: it would read as the running update's failure */
        alink_core_log(c, "aliyun: ota refused: %s", alink_ota_verdict_text(ALINK_OTA_BUSY));
        return true;
    }
    alink_ota_verdict_t v = ev->u.message.too_large ? ALINK_OTA_TOO_LARGE
                                                    : alink_ota_parse_upgrade(ev->u.message.payload,
                                                                              ev->u.message.payload_len, &job);
    if (v == ALINK_OTA_ACCEPTED) {
        v = check_job(o, &job);
    }
    if (v != ALINK_OTA_ACCEPTED) {
        alink_core_log(c, "aliyun: ota refused: %s", alink_ota_verdict_text(v));
        post_step(c, ALINK_OTA_STEP_UPDATE_FAILED, alink_ota_verdict_text(v));
        return true;
    }
    o->job = job;
    o->running = true;
    o->finishing = false;
    o->received_bytes = 0;
    o->last_step = 0;
    o->last_post_ms = ev->now_ms;
    alink_core_log(c, "aliyun: ota begin version=%s size=%" PRIu32, job.version, job.size);
    alink_action_t a = {.type = ALINK_ACT_OTA_BEGIN};
    a.u.ota_begin.url = o->job.url;
    a.u.ota_begin.size = o->job.size;
    a.u.ota_begin.sign_method = o->job.sign_method;
    a.u.ota_begin.version = o->job.version;
    c->emit(c->emit_ctx, &a);
    return true;
}

static void fail(alink_t *c, alink_ota_step_t step, const char *desc)
{
    c->ota.running = false;
    c->ota.finishing = false;
    alink_core_log(c, "aliyun: ota failed: step %d: %s", (int)step, desc);
    post_step(c, (int)step, desc);
}

static void on_progress(alink_t *c, const alink_event_t *ev)
{
    alink_ota_t *o = &c->ota;
    uint32_t received = ev->u.ota.received_bytes;
    if (received > o->job.size) {
        ota_act(c, ALINK_ACT_OTA_ABORT);
        fail(c, ALINK_OTA_STEP_DOWNLOAD_FAILED, "image larger than announced");
        return;
    }
    o->received_bytes = received;
    /* 100 is posted only once the image is verified */
    unsigned percent = (unsigned)((uint64_t)received * 100u / o->job.size);
    if (percent >= 100u) {
        percent = 99u;
    }
    if (percent >= (unsigned)o->last_step + ALINK_OTA_STEP_PERCENT && ev->now_ms - o->last_post_ms >= ALINK_OTA_STEP_MS) {
        o->last_step = (uint8_t)percent;
        o->last_post_ms = ev->now_ms;
        post_step(c, (int)percent, "downloading");
        alink_core_log(c, "aliyun: ota progress %u%%", percent);
    }
}

static bool digest_matches(const alink_ota_t *o, const char *digest_hex)
{
    size_t n = strlen(o->job.sign);
    if (!digest_hex || strlen(digest_hex) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char d = digest_hex[i];
        if (d >= 'A' && d <= 'F') {
            d = (char)(d - 'A' + 'a');
        }
        if (d != o->job.sign[i]) {
            return false;
        }
    }
    return true;
}

static void on_downloaded(alink_t *c, const alink_event_t *ev)
{
    alink_ota_t *o = &c->ota;
    if (ev->u.ota.received_bytes != o->job.size) {
        ota_act(c, ALINK_ACT_OTA_ABORT);
        fail(c, ALINK_OTA_STEP_VERIFY_FAILED, "size mismatch");
        return;
    }
    if (!digest_matches(o, ev->u.ota.digest_hex)) {
        ota_act(c, ALINK_ACT_OTA_ABORT);
        fail(c, ALINK_OTA_STEP_VERIFY_FAILED, "sign mismatch");
        return;
    }
    o->finishing = true;
    post_step(c, 100, "verified");
    alink_core_log(c, "aliyun: ota verified: restarting into version=%s", o->job.version);
    ota_act(c, ALINK_ACT_OTA_FINISH);
}

void alink_ota_event(alink_t *c, const alink_event_t *ev)
{
    alink_ota_t *o = &c->ota;
    if (!o->running) {
        return; /* stale: after a failure or with OTA off */
    }
    switch (ev->type) {
    case ALINK_EV_OTA_PROGRESS:
        if (!o->finishing) {
            on_progress(c, ev);
        }
        break;
    case ALINK_EV_OTA_DOWNLOADED:
        if (!o->finishing) {
            on_downloaded(c, ev);
        }
        break;
    case ALINK_EV_OTA_FAILED: {
        alink_ota_step_t step = ev->u.ota.step;
        if (step != ALINK_OTA_STEP_DOWNLOAD_FAILED && step != ALINK_OTA_STEP_WRITE_FAILED) {
            step = ALINK_OTA_STEP_UPDATE_FAILED;
        }
        fail(c, step,
             step == ALINK_OTA_STEP_DOWNLOAD_FAILED ? "download failed"
             : step == ALINK_OTA_STEP_WRITE_FAILED  ? "write failed"
                                                    : "cannot switch slots");
        break;
    }
    default:
        break;
    }
}
