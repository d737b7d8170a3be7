/* The connection state machine and command handling; the contract is in aliyun_link.h. */
#include "aliyun_link.h"
#include "alink_ota_core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


void alink_config_defaults(alink_config_t *c)
{
    if (!c) {
        return;
    }
    memset(c, 0, sizeof *c);
    c->sign_method = ALIYUN_SIGN_HMACSHA1;
    c->timestamp_mode = ALINK_TIMESTAMP_CLOCK;
    c->secure_mode = 2;
    c->region = "cn-shanghai";
    c->keepalive_s = 120;
    c->backoff_base_ms = 2000;
    c->backoff_cap_ms = 300000;
    c->stable_after_ms = 60000;
    c->connect_timeout_ms = 30000;
    c->time_sync_timeout_ms = 30000;
    c->post_period_ms = 60000;
    c->restart_network_after_ms = 600000;
    c->reboot_after_ms = 1800000;
}

const char *alink_state_name(alink_state_t state)
{
    switch (state) {
    case ALINK_STATE_WAIT_NETWORK:
        return "wait-network";
    case ALINK_STATE_WAIT_TIME:
        return "wait-time";
    case ALINK_STATE_BACKOFF:
        return "backoff";
    case ALINK_STATE_CONNECTING:
        return "connecting";
    case ALINK_STATE_SUBSCRIBING:
        return "subscribing";
    case ALINK_STATE_ONLINE:
        return "online";
    }
    return "unknown";
}

alink_state_t alink_state(const alink_t *core)
{
    return core->state;
}

bool alink_led_on(const alink_t *core)
{
    return core->led_on;
}

static void emit(alink_t *c, const alink_action_t *a)
{
    c->emit(c->emit_ctx, a);
}

static void emit_simple(alink_t *c, alink_action_type_t type)
{
    alink_action_t a;
    memset(&a, 0, sizeof a);
    a.type = type;
    emit(c, &a);
}

void alink_core_log(alink_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->line, sizeof c->line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    alink_action_t a = {.type = ALINK_ACT_LOG};
    a.u.log.text = c->line;
    emit(c, &a);
}

static void set_state(alink_t *c, alink_state_t s, uint64_t now_ms)
{
    c->state = s;
    c->state_since_ms = now_ms;
}

static bool session_open(const alink_t *c)
{
    return c->state == ALINK_STATE_CONNECTING || c->state == ALINK_STATE_SUBSCRIBING ||
           c->state == ALINK_STATE_ONLINE;
}

static void start_outage(alink_t *c, uint64_t now_ms)
{
    if (!c->outage_started) {
        c->outage_started = true;
        c->outage_since_ms = now_ms;
        c->network_restarted = false;
    }
}

static void publish(alink_t *c, alink_topic_t topic, size_t len)
{
    alink_action_t a = {.type = ALINK_ACT_PUBLISH};
    a.u.publish.topic = c->topics[topic];
    a.u.publish.payload = c->payload;
    a.u.publish.payload_len = len;
    a.u.publish.qos = 0;
    emit(c, &a);
}

/* The thing model's services have topics of their own (thing/service/+, rrpc/request/+) to subscribe to. */
static bool thing_services(const alink_t *c)
{
    return c->config.thing_model && c->config.thing_model->service_count > 0;
}

static void publish_thing_to(alink_t *c, const char *topic, size_t len)
{
    alink_action_t a = {.type = ALINK_ACT_PUBLISH};
    a.u.publish.topic = topic;
    a.u.publish.payload = c->config.thing_payload;
    a.u.publish.payload_len = len;
    a.u.publish.qos = 0;
    emit(c, &a);
}

static void publish_thing(alink_t *c, alink_topic_t topic, size_t len)
{
    alink_action_t a = {.type = ALINK_ACT_PUBLISH};
    a.u.publish.topic = c->topics[topic];
    a.u.publish.payload = c->config.thing_payload;
    a.u.publish.payload_len = len;
    a.u.publish.qos = 0;
    emit(c, &a);
}

/* The thing model's post of the properties in `mask` (0: all). */
static void post_thing_properties(alink_t *c, uint64_t mask)
{
    const alink_thing_model_t *model = c->config.thing_model;
    uint32_t id = c->next_message_id;
    size_t len = 0;
    c->next_message_id = id == UINT32_MAX ? 1u : id + 1u;
    uint64_t time_ms = c->config.thing_post_time && c->time_synced && c->now_ms >= c->sync_mono_ms
                           ? c->sync_unix_ms + (c->now_ms - c->sync_mono_ms)
                           : 0;
    alink_status_t st = alink_thing_property_post(model, c->config.thing_props, mask, id, time_ms,
                                                  c->config.thing_payload, c->config.thing_payload_size, &len);
    if (st == ALINK_OK) {
        publish_thing(c, ALINK_TOPIC_PROPERTY_POST, len);
        alink_core_log(c, "aliyun: property post id=%" PRIu32, id);
        for (uint32_t i = 0; c->config.thing_posted && i < model->property_count; i++) {
            if (mask == 0 || (mask >> i) & 1u) {
                const alink_thing_field_t *f = &model->properties[i];
                memcpy((unsigned char *)c->config.thing_posted + f->offset,
                       (const unsigned char *)c->config.thing_props + f->offset, f->size);
            }
        }
    } else {
        alink_core_log(c, "aliyun: property post not sent: %s", alink_strerror(st));
    }
}

/* The properties whose value differs from the last post, in one post (rate-limited by the caller). */
static void post_changed_readings(alink_t *c, uint64_t now_ms)
{
    const alink_thing_model_t *model = c->config.thing_model;
    uint64_t mask = 0;
    for (uint32_t i = 0; i < model->property_count; i++) {
        const alink_thing_field_t *f = &model->properties[i];
        if (memcmp((const unsigned char *)c->config.thing_posted + f->offset,
                   (const unsigned char *)c->config.thing_props + f->offset, f->size) != 0) {
            mask |= UINT64_C(1) << i;
        }
    }
    if (mask != 0) {
        c->last_change_post_ms = now_ms;
        post_thing_properties(c, mask);
    }
}

static void post_properties(alink_t *c)
{
    if (c->config.thing_model) {
        post_thing_properties(c, 0);
        return;
    }
    alink_properties_t props = {c->led_on, c->rssi_dbm, c->free_heap_bytes};
    uint32_t id = c->next_message_id;
    size_t len = 0;
    c->next_message_id = id == UINT32_MAX ? 1u : id + 1u;
    if (alink_json_property_post(id, &props, c->payload, sizeof c->payload, &len) == ALINK_OK) {
        publish(c, ALINK_TOPIC_PROPERTY_POST, len);
        alink_core_log(c, "aliyun: property post id=%" PRIu32, id);
    }
}

static void schedule_retry(alink_t *c, const alink_event_t *ev)
{
    uint32_t delay_ms = alink_backoff_next_ms(&c->backoff, ev->random);
    c->next_connect_ms = ev->now_ms + delay_ms;
    set_state(c, ALINK_STATE_BACKOFF, ev->now_ms);
    alink_core_log(c, "aliyun: reconnecting in %" PRIu32 " ms", delay_ms);
}

static void start_connect(alink_t *c, const alink_event_t *ev)
{
    char timestamp[ALIYUN_AUTH_TIMESTAMP_MAX + 1];
    const alink_config_t *cfg = &c->config;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;

    if (cfg->timestamp_mode == ALINK_TIMESTAMP_FIXED) {
        memcpy(timestamp, ALINK_FIXED_TIMESTAMP, sizeof ALINK_FIXED_TIMESTAMP);
    } else {
        (void)snprintf(timestamp, sizeof timestamp, "%" PRIu64, c->sync_unix_ms + (ev->now_ms - c->sync_mono_ms));
    }
    aliyun_auth_request_t req = {cfg->product_key, cfg->device_name, cfg->device_secret,
                                 cfg->client_id,   timestamp,        cfg->sign_method,
                                 cfg->secure_mode, cfg->region,      cfg->endpoint};
    aliyun_auth_status_t st = aliyun_auth_sign(&req, &c->credentials, &bad);
    if (st != ALIYUN_AUTH_OK) {
        static const char *const fields[] = {"request",   "product key", "device name", "device secret",
                                             "client id", "timestamp",   "region",      "endpoint"};
        alink_core_log(c, "aliyun: cannot sign: %s: %s", (unsigned)bad < 8u ? fields[bad] : "request",
                 aliyun_auth_strerror(st));
        alink_backoff_to_cap(&c->backoff);
        schedule_retry(c, ev);
        return;
    }
    alink_core_log(c, "aliyun: connecting to %s:%u as %s", c->credentials.host, (unsigned)c->credentials.port,
             c->credentials.client_id);
    alink_action_t a = {.type = ALINK_ACT_CONNECT};
    a.u.connect.host = c->credentials.host;
    a.u.connect.port = c->credentials.port;
    a.u.connect.tls = cfg->secure_mode == 2;
    a.u.connect.client_id = c->credentials.client_id;
    a.u.connect.username = c->credentials.username;
    a.u.connect.password = c->credentials.password;
    a.u.connect.keepalive_s = cfg->keepalive_s;
    set_state(c, ALINK_STATE_CONNECTING, ev->now_ms);
    emit(c, &a);
    memset(&c->credentials, 0, sizeof c->credentials); /* the password is not kept */
}

static void after_network(alink_t *c, const alink_event_t *ev)
{
    if (c->time_synced && ev->now_ms < c->next_connect_ms) {
        /* a flapping network must not cut a backoff short (an auth refusal waits at the cap) */
        set_state(c, ALINK_STATE_BACKOFF, ev->now_ms);
    } else if (c->time_synced) {
        start_connect(c, ev);
    } else {
        set_state(c, ALINK_STATE_WAIT_TIME, ev->now_ms);
        c->time_wait_logged = false;
        alink_core_log(c, "aliyun: waiting for time sync");
    }
}

static void go_online(alink_t *c, uint64_t now_ms)
{
    set_state(c, ALINK_STATE_ONLINE, now_ms);
    c->outage_started = false;
    alink_core_log(c, "aliyun: online");
    alink_ota_online(c, now_ms);
    post_properties(c);
    c->next_post_ms = now_ms + c->config.post_period_ms;
}

static void lose_session(alink_t *c, const alink_event_t *ev, const char *why)
{
    if (c->state == ALINK_STATE_SUBSCRIBING || c->state == ALINK_STATE_ONLINE) {
        if (ev->now_ms - c->connected_at_ms >= c->config.stable_after_ms) {
            alink_backoff_reset(&c->backoff);
        }
    }
    start_outage(c, ev->now_ms);
    alink_core_log(c, "aliyun: %s", why);
    schedule_retry(c, ev); /* logged before the shell closes the client, however long that takes */
    emit_simple(c, ALINK_ACT_DISCONNECT);
}

static const char *connack_meaning(int code)
{
    /* MQTT 3.1.1 section 3.2.2.3, CONNACK return codes */
    static const char *const meanings[] = {"accepted",
                                           "unacceptable protocol version",
                                           "identifier rejected",
                                           "server unavailable",
                                           "bad username or password",
                                           "not authorized"};
    return code > 0 && code <= 5 ? meanings[code] : NULL;
}

static void set_led(alink_t *c, bool on)
{
    alink_action_t a = {.type = ALINK_ACT_SET_LED};
    a.u.set_led.on = on;
    c->led_on = on;
    emit(c, &a);
    alink_core_log(c, "aliyun: led %s", on ? "on" : "off");
}

static void on_thing_property_set(alink_t *c, const alink_event_t *ev)
{
    const alink_thing_model_t *model = c->config.thing_model;
    alink_thing_result_t result;
    size_t len = 0;
    alink_status_t st = alink_thing_property_set(model, c->config.thing_props, c->config.thing_staging,
                                                 ev->u.message.payload, ev->u.message.payload_len, &result);
    if (st != ALINK_OK) {
        alink_core_log(c, "aliyun: ignored message: %s", alink_strerror(st));
        return;
    }
    if (alink_thing_reply(&result, NULL, 0, NULL, c->config.thing_payload, c->config.thing_payload_size, &len) ==
        ALINK_OK) {
        publish_thing(c, ALINK_TOPIC_PROPERTY_SET_REPLY, len);
    }
    alink_core_log(c, "aliyun: property set id=%s code=%d", result.id, result.code);
    if (result.changed == 0) {
        return;
    }
    int led = alink_thing_property_index(model, "LightSwitch");
    if (led >= 0 && model->properties[led].type == ALINK_THING_BOOL && (result.changed >> led) & 1u) {
        bool on;
        memcpy(&on, (const unsigned char *)c->config.thing_props + model->properties[led].offset, sizeof on);
        set_led(c, on);
    }
    if (c->config.thing_applied) {
        c->config.thing_applied(c->config.thing_ctx, result.changed);
    }
    post_thing_properties(c, result.changed);
}

static void on_property_set(alink_t *c, const alink_event_t *ev)
{
    if (c->config.thing_model) {
        on_thing_property_set(c, ev);
        return;
    }
    alink_property_set_t set;
    size_t len = 0;
    alink_status_t st = alink_json_parse_property_set(ev->u.message.payload, ev->u.message.payload_len, &set);
    if (st != ALINK_OK && st != ALINK_ERR_BAD_VALUE && st != ALINK_ERR_NO_PARAMS) {
        alink_core_log(c, "aliyun: ignored message: %s", alink_strerror(st));
        return;
    }
    bool changed = st == ALINK_OK && set.has_light_switch && set.light_switch != c->led_on;
    if (st == ALINK_OK && set.has_light_switch) {
        set_led(c, set.light_switch);
    }
    int code = st == ALINK_OK ? ALINK_CODE_OK : ALINK_CODE_BAD_PARAMS;
    if (alink_json_reply(set.id, code, c->payload, sizeof c->payload, &len) == ALINK_OK) {
        publish(c, ALINK_TOPIC_PROPERTY_SET_REPLY, len);
    }
    alink_core_log(c, "aliyun: property set id=%s code=%d", set.id, code);
    if (changed) {
        post_properties(c);
    }
}

static void on_setled(alink_t *c, const alink_event_t *ev)
{
    alink_setled_t cmd;
    alink_status_t st = alink_json_parse_setled(ev->u.message.payload, ev->u.message.payload_len, &cmd);
    if (st != ALINK_OK) {
        alink_core_log(c, "aliyun: ignored message: %s", alink_strerror(st));
        return;
    }
    if (strcmp(cmd.device_name, c->config.device_name) != 0) {
        alink_core_log(c, "aliyun: ignored message: other device");
        return;
    }
    bool changed = cmd.on != c->led_on;
    set_led(c, cmd.on);
    if (!changed) {
        return;
    }
    if (!c->config.thing_model) {
        post_properties(c);
        return;
    }
    /* With a model, the seed's LED command is a set of LightSwitch (when the model has it): the property,
     * the application and the post follow, as after a property set; a model without it has no LED to post. */
    const alink_thing_model_t *model = c->config.thing_model;
    int led = alink_thing_property_index(model, "LightSwitch");
    if (led < 0 || model->properties[led].type != ALINK_THING_BOOL) {
        return;
    }
    uint64_t bit = UINT64_C(1) << led;
    memcpy((unsigned char *)c->config.thing_props + model->properties[led].offset, &cmd.on, sizeof cmd.on);
    if (c->config.thing_applied) {
        c->config.thing_applied(c->config.thing_ctx, bit);
    }
    post_thing_properties(c, bit);
}

/* A thing-model service: async on thing/service/{Identifier}, sync through rrpc/request/{messageId}. */
static void on_service(alink_t *c, const alink_event_t *ev, bool rrpc)
{
    const alink_thing_model_t *model = c->config.thing_model;
    const char *topic = ev->u.message.topic;
    size_t topic_len = ev->u.message.topic_len;
    size_t start = topic_len;
    while (start > 0 && topic[start - 1] != '/') {
        start--;
    }
    const char *last = topic + start;
    size_t last_len = topic_len - start;
    int index = rrpc ? alink_thing_service_from_method(model, ev->u.message.payload, ev->u.message.payload_len)
                     : alink_thing_service_index(model, last, last_len);
    if (index < 0 || model->services[index].sync != rrpc) {
        alink_core_log(c, "aliyun: ignored message: unknown service");
        return;
    }
    /* An RRPC message id is echoed into the response topic: only an id of 1..64 letters and digits. */
    for (size_t i = 0; rrpc && i <= last_len; i++) {
        bool alnum = i < last_len && ((last[i] >= '0' && last[i] <= '9') || (last[i] >= 'a' && last[i] <= 'z') ||
                                      (last[i] >= 'A' && last[i] <= 'Z'));
        if (i == last_len ? (last_len == 0 || last_len > 64) : !alnum) {
            alink_core_log(c, "aliyun: ignored message: bad rrpc id");
            return;
        }
    }
    const alink_thing_service_t *s = &model->services[index];
    alink_thing_result_t result;
    alink_status_t st = alink_thing_service_call(model, (uint32_t)index, ev->u.message.payload,
                                                 ev->u.message.payload_len, c->config.thing_input,
                                                 c->config.thing_output, &result);
    if (st != ALINK_OK) {
        alink_core_log(c, "aliyun: ignored message: %s", alink_strerror(st));
        return;
    }
    char reply_topic[ALINK_TOPIC_SIZE + 80];
    int n = rrpc ? snprintf(reply_topic, sizeof reply_topic, "/sys/%s/%s/rrpc/response/%.*s", c->config.product_key,
                            c->config.device_name, (int)last_len, last)
                 : snprintf(reply_topic, sizeof reply_topic, "%.*s_reply", (int)topic_len, topic);
    size_t len = 0;
    if (n > 0 && (size_t)n < sizeof reply_topic &&
        alink_thing_reply(&result, s->outputs, s->output_count, c->config.thing_output, c->config.thing_payload,
                          c->config.thing_payload_size, &len) == ALINK_OK) {
        publish_thing_to(c, reply_topic, len);
    }
    alink_core_log(c, "aliyun: service %s id=%s code=%d", s->identifier, result.id, result.code);
}

static void on_message(alink_t *c, const alink_event_t *ev)
{
    const char *topic = ev->u.message.topic;
    size_t topic_len = ev->u.message.topic_len;
    if (ev->u.message.too_large) {
        alink_core_log(c, "aliyun: ignored message: %s", alink_strerror(ALINK_ERR_TOO_LARGE));
    } else if (alink_topic_matches(c->topics[ALINK_TOPIC_PROPERTY_SET], topic, topic_len)) {
        on_property_set(c, ev);
    } else if (alink_topic_matches(c->topics[ALINK_TOPIC_USER_SETLED], topic, topic_len)) {
        on_setled(c, ev);
    } else if (thing_services(c) && alink_topic_matches(c->topics[ALINK_TOPIC_SERVICE], topic, topic_len)) {
        on_service(c, ev, false);
    } else if (thing_services(c) && alink_topic_matches(c->topics[ALINK_TOPIC_RRPC_REQUEST], topic, topic_len)) {
        on_service(c, ev, true);
    } else if (alink_ota_message(c, ev)) {
        /* handled by the OTA part */
    } else {
        alink_core_log(c, "aliyun: ignored message: unknown topic");
    }
}

static void on_suback(alink_t *c, const alink_event_t *ev)
{
    unsigned index = ev->u.suback.index;
    unsigned bit = 1u << index;
    if (c->state != ALINK_STATE_SUBSCRIBING || index >= c->subscription_count || !(c->subacks_pending & bit)) {
        return; /* stale or duplicate */
    }
    c->subacks_pending &= ~bit;
    const char *topic = c->subscribed_topics[index];
    alink_core_log(c, ev->u.suback.granted ? "aliyun: subscribed %s" : "aliyun: subscribe refused %s", topic);
    if (c->subacks_pending == 0) {
        go_online(c, ev->now_ms);
    }
}

static void on_connected(alink_t *c, const alink_event_t *ev)
{
    if (c->state == ALINK_STATE_BACKOFF || c->state == ALINK_STATE_WAIT_NETWORK ||
        c->state == ALINK_STATE_WAIT_TIME) {
        emit_simple(c, ALINK_ACT_DISCONNECT); /* an attempt the core gave up has connected after all */
        return;
    }
    if (c->state != ALINK_STATE_CONNECTING) {
        return;
    }
    alink_core_log(c, "aliyun: mqtt connected");
    c->connected_at_ms = ev->now_ms;
    set_state(c, ALINK_STATE_SUBSCRIBING, ev->now_ms);
    unsigned n = 0;
    c->subscribed_topics[n++] = c->topics[ALINK_TOPIC_PROPERTY_SET];
    c->subscribed_topics[n++] = c->topics[ALINK_TOPIC_USER_SETLED];
    if (thing_services(c)) {
        c->subscribed_topics[n++] = c->topics[ALINK_TOPIC_SERVICE];
        c->subscribed_topics[n++] = c->topics[ALINK_TOPIC_RRPC_REQUEST];
    }
    if (alink_ota_subscription(c)) {
        c->subscribed_topics[n++] = alink_ota_subscription(c);
    }
    c->subscription_count = n;
    c->subacks_pending = (1u << c->subscription_count) - 1u;
    for (unsigned i = 0; i < c->subscription_count; i++) {
        alink_action_t a = {.type = ALINK_ACT_SUBSCRIBE};
        a.u.subscribe.topic = c->subscribed_topics[i];
        a.u.subscribe.index = i;
        a.u.subscribe.qos = 1; /* commands should not be lost to a brief drop */
        emit(c, &a);
    }
}

static void on_refused(alink_t *c, const alink_event_t *ev)
{
    int code = ev->u.connack_code;
    if (c->state != ALINK_STATE_CONNECTING) {
        return;
    }
    const char *meaning = connack_meaning(code);
    if (meaning) {
        alink_core_log(c, "aliyun: connect refused: %s", meaning);
    } else {
        alink_core_log(c, "aliyun: connect refused: code %d", code);
    }
    if (code == 4 || code == 5) {
        /* Retrying soon cannot fix credentials, and Aliyun throttles devices that hammer it. */
        alink_backoff_to_cap(&c->backoff);
    }
    start_outage(c, ev->now_ms);
    schedule_retry(c, ev);
    emit_simple(c, ALINK_ACT_DISCONNECT);
}

static void escalate(alink_t *c, uint64_t now_ms)
{
    if (c->state == ALINK_STATE_ONLINE || !c->outage_started) {
        return;
    }
    uint64_t offline_ms = now_ms - c->outage_since_ms;
    const alink_config_t *cfg = &c->config;
    if (cfg->reboot_after_ms && offline_ms >= cfg->reboot_after_ms && !c->reboot_requested) {
        c->reboot_requested = true;
        alink_core_log(c, "aliyun: offline for %" PRIu64 " s: rebooting", offline_ms / 1000u);
        emit_simple(c, ALINK_ACT_REBOOT);
    } else if (cfg->restart_network_after_ms && offline_ms >= cfg->restart_network_after_ms &&
               !c->network_restarted && !c->reboot_requested) {
        c->network_restarted = true;
        alink_core_log(c, "aliyun: offline for %" PRIu64 " s: restarting network", offline_ms / 1000u);
        if (session_open(c)) {
            emit_simple(c, ALINK_ACT_DISCONNECT);
        }
        emit_simple(c, ALINK_ACT_RESTART_NETWORK);
        c->net_up = false; /* the shell reports NET_UP again once the restarted network has an address */
        set_state(c, ALINK_STATE_WAIT_NETWORK, now_ms);
    }
}

static void on_tick(alink_t *c, const alink_event_t *ev)
{
    uint64_t now = ev->now_ms;
    c->rssi_dbm = ev->u.tick.rssi_dbm;
    c->free_heap_bytes = ev->u.tick.free_heap_bytes;
    switch (c->state) {
    case ALINK_STATE_WAIT_TIME:
        if (!c->time_wait_logged && now - c->state_since_ms >= c->config.time_sync_timeout_ms) {
            c->time_wait_logged = true;
            alink_core_log(c, "aliyun: time sync overdue: not connecting with an unset clock");
        }
        break;
    case ALINK_STATE_BACKOFF:
        if (now >= c->next_connect_ms) {
            start_connect(c, ev);
        }
        break;
    case ALINK_STATE_CONNECTING:
    case ALINK_STATE_SUBSCRIBING:
        if (now - c->state_since_ms >= c->config.connect_timeout_ms) {
            lose_session(c, ev, "connect timed out");
        }
        break;
    case ALINK_STATE_ONLINE:
        if (c->config.post_period_ms && now >= c->next_post_ms) {
            post_properties(c);
            c->next_post_ms = now + c->config.post_period_ms;
        } else if (c->config.thing_model && c->config.thing_posted &&
                   now - c->last_change_post_ms >= c->config.thing_post_min_interval_ms) {
            post_changed_readings(c, now);
        }
        break;
    case ALINK_STATE_WAIT_NETWORK:
        break;
    }
    escalate(c, now);
}

alink_status_t alink_init(alink_t *core, const alink_config_t *config, alink_emit_fn emit_fn, void *emit_ctx,
                          aliyun_auth_field_t *bad_field)
{
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    if (bad_field) {
        *bad_field = ALIYUN_FIELD_NONE;
    }
    if (!core || !config || !emit_fn) {
        return ALINK_ERR_ARG;
    }
    memset(core, 0, sizeof *core);
    core->config = *config;
    if (!core->config.client_id) {
        core->config.client_id = config->device_name;
    }
    const alink_config_t *cfg = &core->config;
    aliyun_auth_request_t req = {cfg->product_key, cfg->device_name, cfg->device_secret,
                                 cfg->client_id,   ALINK_FIXED_TIMESTAMP, cfg->sign_method,
                                 cfg->secure_mode, cfg->region,      cfg->endpoint};
    if (aliyun_auth_validate(&req, &bad) != ALIYUN_AUTH_OK) {
        if (bad_field) {
            *bad_field = bad;
        }
        return ALINK_ERR_CONFIG;
    }
    if (cfg->keepalive_s < ALINK_KEEPALIVE_MIN_S || cfg->keepalive_s > ALINK_KEEPALIVE_MAX_S ||
        cfg->backoff_base_ms == 0 || cfg->backoff_cap_ms < cfg->backoff_base_ms || cfg->connect_timeout_ms == 0 ||
        (unsigned)cfg->timestamp_mode > ALINK_TIMESTAMP_FIXED) {
        return ALINK_ERR_CONFIG;
    }
    if (cfg->thing_model && (alink_thing_model_check(cfg->thing_model) != ALINK_OK || !cfg->thing_props ||
                             !cfg->thing_staging || !cfg->thing_payload || cfg->thing_payload_size == 0)) {
        return ALINK_ERR_CONFIG;
    }
    for (uint32_t i = 0; cfg->thing_model && i < cfg->thing_model->service_count; i++) {
        const alink_thing_service_t *s = &cfg->thing_model->services[i];
        if ((s->input_size > 0 && (!cfg->thing_input || s->input_size > cfg->thing_input_size)) ||
            (s->output_size > 0 && (!cfg->thing_output || s->output_size > cfg->thing_output_size))) {
            return ALINK_ERR_CONFIG;
        }
    }
    for (int t = 0; t < ALINK_TOPIC_COUNT; t++) {
        if (alink_topic_build((alink_topic_t)t, cfg->product_key, cfg->device_name, core->topics[t],
                              sizeof core->topics[t]) != ALINK_OK) {
            return ALINK_ERR_CONFIG;
        }
    }
    if (alink_ota_init(core) != ALINK_OK) {
        return ALINK_ERR_CONFIG;
    }
    alink_backoff_init(&core->backoff, cfg->backoff_base_ms, cfg->backoff_cap_ms);
    core->emit = emit_fn;
    core->emit_ctx = emit_ctx;
    core->next_message_id = 1;
    core->state = ALINK_STATE_WAIT_NETWORK;
    /* Proof for the serial log that the triple was read (and decrypted) before any network exists;
     * the username form names the device without the secret. */
    alink_core_log(core, "aliyun: triple loaded: %s&%s", cfg->device_name, cfg->product_key);
    return ALINK_OK;
}

alink_status_t alink_handle(alink_t *c, const alink_event_t *ev)
{
    if (!c || !c->emit || !ev || (unsigned)ev->type > ALINK_EV_OTA_FAILED ||
        (ev->type == ALINK_EV_MESSAGE &&
         (!ev->u.message.topic || (!ev->u.message.payload && !ev->u.message.too_large)))) {
        return ALINK_ERR_ARG;
    }
    if (c->state != ALINK_STATE_ONLINE) {
        start_outage(c, ev->now_ms); /* the first event starts the clock of the first outage */
    }
    c->now_ms = ev->now_ms;
    switch (ev->type) {
    case ALINK_EV_NET_UP:
        if (!c->net_up) {
            c->net_up = true;
            alink_core_log(c, "aliyun: network up");
        }
        if (c->state == ALINK_STATE_WAIT_NETWORK) {
            after_network(c, ev);
        }
        break;
    case ALINK_EV_NET_DOWN:
        if (c->net_up) {
            alink_core_log(c, "aliyun: network lost");
        }
        c->net_up = false;
        if (session_open(c)) {
            emit_simple(c, ALINK_ACT_DISCONNECT);
        }
        start_outage(c, ev->now_ms);
        set_state(c, ALINK_STATE_WAIT_NETWORK, ev->now_ms);
        break;
    case ALINK_EV_TIME_SYNCED:
        c->sync_mono_ms = ev->now_ms;
        c->sync_unix_ms = ev->u.time_synced.unix_ms;
        if (!c->time_synced) {
            c->time_synced = true;
            alink_core_log(c, "aliyun: time synced");
        }
        if (c->state == ALINK_STATE_WAIT_TIME) {
            start_connect(c, ev);
        }
        break;
    case ALINK_EV_MQTT_CONNECTED:
        on_connected(c, ev);
        break;
    case ALINK_EV_MQTT_REFUSED:
        on_refused(c, ev);
        break;
    case ALINK_EV_MQTT_DISCONNECTED:
        if (c->state == ALINK_STATE_CONNECTING) {
            if (ev->u.cert_refusal != ALINK_CERT_ACCEPTED) {
                alink_core_log(c, "aliyun: server certificate rejected: %s", alink_cert_refusal_text(ev->u.cert_refusal));
            }
            lose_session(c, ev, "connect failed");
        } else if (c->state == ALINK_STATE_SUBSCRIBING || c->state == ALINK_STATE_ONLINE) {
            lose_session(c, ev, "mqtt disconnected");
        }
        break;
    case ALINK_EV_SUBACK:
        on_suback(c, ev);
        break;
    case ALINK_EV_MESSAGE:
        if (c->state == ALINK_STATE_SUBSCRIBING || c->state == ALINK_STATE_ONLINE) {
            on_message(c, ev);
        }
        break;
    case ALINK_EV_TICK:
        on_tick(c, ev);
        break;
    case ALINK_EV_OTA_PROGRESS:
    case ALINK_EV_OTA_DOWNLOADED:
    case ALINK_EV_OTA_FAILED:
        alink_ota_event(c, ev);
        break;
    }
    return ALINK_OK;
}

alink_status_t alink_event_post(alink_t *core, uint32_t event_index, const void *output, uint64_t now_ms)
{
    if (!core || !core->config.thing_model || core->state != ALINK_STATE_ONLINE ||
        event_index >= core->config.thing_model->event_count || now_ms < core->sync_mono_ms) {
        return ALINK_ERR_ARG;
    }
    const alink_thing_event_t *e = &core->config.thing_model->events[event_index];
    char topic[ALINK_TOPIC_SIZE + 64];
    int n = snprintf(topic, sizeof topic, "/sys/%s/%s/thing/event/%s/post", core->config.product_key,
                     core->config.device_name, e->identifier);
    if (n < 0 || (size_t)n >= sizeof topic) {
        return ALINK_ERR_BUFFER;
    }
    uint32_t id = core->next_message_id;
    size_t len = 0;
    alink_status_t st = alink_thing_event_post(core->config.thing_model, event_index, output, id,
                                               core->sync_unix_ms + (now_ms - core->sync_mono_ms),
                                               core->config.thing_payload, core->config.thing_payload_size, &len);
    if (st != ALINK_OK) {
        return st;
    }
    core->next_message_id = id == UINT32_MAX ? 1u : id + 1u;
    publish_thing_to(core, topic, len);
    alink_core_log(core, "aliyun: event %s id=%" PRIu32, e->identifier, id);
    return ALINK_OK;
}
