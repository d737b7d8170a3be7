/*
 * Mosquitto 2.0 plugin (API v5) enforcing Alibaba Cloud IoT Platform's MQTT rules for `provision broker`.
 * Loaded once per listener (per_listener_settings true) so each instance knows which securemode its
 * listener accepts. Options:
 *     plugin_opt_rules        the rules file (see device_rules.h)
 *     plugin_opt_securemode   2 (TLS listener) or 3 (plain TCP listener)
 *     plugin_opt_max_skew_s   refuse a signed timestamp further than this from the broker clock; 0: off
 *
 * Presence, for the console (provision.cloud.platform lists devices from it): on each device connect and
 * disconnect the plugin publishes, QoS 1, not retained, to `$aliyun/presence/{pk}/{dn}`
 *     {"event":"online"|"offline","clientId":"<full MQTT client id>","ts":<ms>}
 * A connection taken over by a newer one of the same device publishes no "offline" (the device is online).
 * No peer address: every client reaches Mosquitto through the connect gate (provision/cloud/gate.py) on a unix
 * socket, so mosquitto_client_address() names the socket; the gate tells the platform service the real one.
 * No device can subscribe there: `$aliyun/...` is outside every device's topics.
 */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aliyun_auth.h"
#include "client_id.h"
#include "connected_ids.h"
#include "device_rules.h"
#include "server_subs.h"
#include "topic_rules.h"

/* Aliyun: keep-alive must be 30..1200 s ("MQTT keepalive", MQTT-TCP connection docs). */
#define KEEPALIVE_MIN_S 30
#define KEEPALIVE_MAX_S 1200

/* Aliyun "Limits": a message payload is at most 256 KB; the platform closes a connection that sends more. */
#define PAYLOAD_MAX_BYTES (256 * 1024)

/* An `_ss=1` device never subscribed, so it never chose a QoS: its copies go at QoS 0, which asks nothing
 * back. A QoS 1 copy makes the client send a PUBACK, and Alibaba's Python SDK (paho 1.x under loop_forever
 * in its own thread, publishing from the caller's thread) then writes to its TLS socket from two threads at
 * once: Mosquitto sees "decryption failed or bad record mac" and drops it ("Protocol error") within a few
 * of 100 property posts (tests/interop/test_linkkit_platform.py). */
#define SERVER_SUB_QOS 0

typedef struct {
    mosquitto_plugin_id_t *id;
    device_rules_t rules;
    int secure_mode;
    long long max_skew_ms;
} plugin_state_t;

static int refuse(const char *client_id, const char *reason)
{
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "aliyun-auth: refused '%s': %s", client_id != NULL ? client_id : "",
                         reason);
    return MOSQ_ERR_AUTH;
}

/* Splits "dn&pk" into its parts; false when it is not of that shape. */
static bool split_username(const char *username, char *dn, size_t dn_size, char *pk, size_t pk_size)
{
    const char *amp = strchr(username, '&');
    if (amp == NULL || strchr(amp + 1, '&') != NULL) {
        return false;
    }
    size_t dn_len = (size_t)(amp - username);
    size_t pk_len = strlen(amp + 1);
    if (dn_len == 0 || dn_len >= dn_size || pk_len == 0 || pk_len >= pk_size) {
        return false;
    }
    memcpy(dn, username, dn_len);
    dn[dn_len] = '\0';
    memcpy(pk, amp + 1, pk_len + 1);
    return product_key_valid(pk) && device_name_valid(dn);
}

/* The console principal (provision.cloud.endpoint.CONSOLE_USERNAME): no device username can be it (theirs hold
 * '&'). It may use every topic, connects with any client id, any number of times, and is never kicked. */
#define CONSOLE_USERNAME "$console"

/* The connection whose MOSQ_EVT_DISCONNECT ran last. Mosquitto 2.0 never shows a plugin the will at CONNECT
 * (handle__connect reads it with no ACL check and the basic-auth event does not carry it): the connect gate
 * refuses a CONNECT with a will before Mosquitto sees it. This stays as the second line, for a client that
 * reaches Mosquitto's socket some other way: context__disconnect runs the disconnect event, then context__send_will, whose WRITE ACL check
 * is the first one after it for that connection: denying it drops the will, as the platform has none.
 * Cleared by the next CONNECT, before a new connection could reuse the address. */
static const void *disconnecting_client;

static bool equal_constant_time(const char *expected, const char *given)
{
    size_t len = strlen(expected);
    if (strlen(given) != len) {
        return false;
    }
    unsigned diff = 0;
    for (size_t i = 0; i < len; i++) {
        diff |= (unsigned)((unsigned char)expected[i] ^ (unsigned char)given[i]);
    }
    return diff == 0;
}

static bool hex_equal_constant_time(const char *expected, const char *given)
{
    size_t len = strlen(expected);
    if (strlen(given) != len) {
        return false;
    }
    unsigned diff = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)expected[i];
        unsigned char b = (unsigned char)given[i];
        /* hex digits compare case-insensitively; upper-case is what the platform prints */
        if (b >= 'a' && b <= 'f') {
            b = (unsigned char)(b - 'a' + 'A');
        }
        diff |= (unsigned)(a ^ b);
    }
    return diff == 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

/* A second connection with the same triple takes over: kick every older one. The new client carries the
 * same username, so it is renamed while the kick runs (Mosquitto is single-threaded here). */
static void kick_older_connections(struct mosquitto *client, const char *username)
{
    char holding[ALIYUN_AUTH_USERNAME_SIZE + 16];
    int written = snprintf(holding, sizeof holding, "%s#connecting", username);
    if (written < 0 || (size_t)written >= sizeof holding) {
        return;
    }
    if (mosquitto_set_username(client, holding) != MOSQ_ERR_SUCCESS) {
        return;
    }
    if (mosquitto_kick_client_by_username(username, false) != MOSQ_ERR_SUCCESS) {
        /* the platform's rule (one connection per triple) is then not enforced for this connect: say so */
        mosquitto_log_printf(MOSQ_LOG_WARNING, "aliyun-auth: could not kick the older connection of '%s'", username);
    }
    if (mosquitto_set_username(client, username) != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "aliyun-auth: could not restore the username of '%s'",
                             mosquitto_client_id(client));
    }
}

/* Appends text to out as the body of a JSON string; false when it does not fit. */
static bool json_escape(char *out, size_t out_size, size_t *used, const char *text)
{
    for (const unsigned char *c = (const unsigned char *)(text != NULL ? text : ""); *c != '\0'; c++) {
        char chunk[8];
        int len;
        if (*c == '"' || *c == '\\') {
            len = snprintf(chunk, sizeof chunk, "\\%c", *c);
        } else if (*c < 0x20) {
            len = snprintf(chunk, sizeof chunk, "\\u%04x", *c);
        } else {
            chunk[0] = (char)*c;
            len = 1;
        }
        if (len < 0 || *used + (size_t)len >= out_size) {
            return false;
        }
        memcpy(out + *used, chunk, (size_t)len);
        *used += (size_t)len;
    }
    out[*used] = '\0';
    return true;
}

static void publish_presence(const char *pk, const char *dn, const char *event, struct mosquitto *client)
{
    char topic[ALIYUN_AUTH_PRODUCT_KEY_MAX + ALIYUN_AUTH_DEVICE_NAME_MAX + 32];
    int topic_len = snprintf(topic, sizeof topic, "$aliyun/presence/%s/%s", pk, dn);
    char body[512];
    int head = snprintf(body, sizeof body, "{\"event\":\"%s\",\"clientId\":\"", event);
    if (topic_len < 0 || (size_t)topic_len >= sizeof topic || head < 0 || (size_t)head >= sizeof body) {
        return;
    }
    size_t used = (size_t)head;
    bool fits = json_escape(body, sizeof body, &used, mosquitto_client_id(client));
    int tail = fits ? snprintf(body + used, sizeof body - used, "\",\"ts\":%lld}", now_ms()) : -1;
    if (tail < 0 || used + (size_t)tail >= sizeof body) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "aliyun-auth: presence of '%s' too long to publish", dn);
        return;
    }
    used += (size_t)tail;
    int rc = mosquitto_broker_publish_copy(NULL, topic, (int)used, body, 1, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "aliyun-auth: presence of '%s' not published (%d)", dn, rc);
    }
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    (void)event;
    const struct mosquitto_evt_basic_auth *auth = event_data;
    const plugin_state_t *state = userdata;
    const char *mqtt_id = mosquitto_client_id(auth->client);

    disconnecting_client = NULL;
    if (auth->username == NULL || auth->password == NULL) {
        return refuse(mqtt_id, "username and password are required");
    }
    if (strcmp(auth->username, CONSOLE_USERNAME) == 0) {
        if (state->rules.console_password[0] == '\0'
            || !equal_constant_time(state->rules.console_password, auth->password)) {
            return refuse(mqtt_id, "bad console password");
        }
        return MOSQ_ERR_SUCCESS;
    }
    client_id_t id;
    client_id_status_t id_status = client_id_parse(mqtt_id, &id);
    if (id_status != CLIENT_ID_OK) {
        return refuse(mqtt_id, client_id_strerror(id_status));
    }
    if (id.secure_mode != state->secure_mode) {
        return refuse(mqtt_id, state->secure_mode == 2 ? "securemode must be 2 on the TLS listener"
                                                       : "securemode must be 3 on the plain TCP listener");
    }
    int keepalive = mosquitto_client_keepalive(auth->client);
    if (keepalive < KEEPALIVE_MIN_S || keepalive > KEEPALIVE_MAX_S) {
        return refuse(mqtt_id, "keep-alive must be 30..1200 s");
    }
    char dn[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char pk[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    if (!split_username(auth->username, dn, sizeof dn, pk, sizeof pk)) {
        return refuse(mqtt_id, "username is not DeviceName&ProductKey");
    }
    const device_entry_t *device = device_rules_find(&state->rules, pk, dn);
    if (device == NULL) {
        return refuse(mqtt_id, "no such device");
    }
    if (state->max_skew_ms > 0) {
        if (!id.has_timestamp) {
            return refuse(mqtt_id, "timestamp required (the broker checks clock skew)");
        }
        errno = 0;
        long long stamp = strtoll(id.timestamp, NULL, 10);
        long long skew = stamp - now_ms();
        if (errno != 0 || skew > state->max_skew_ms || skew < -state->max_skew_ms) {
            return refuse(mqtt_id, "timestamp too far from the broker clock");
        }
    }
    char expected[ALIYUN_AUTH_PASSWORD_SIZE];
    aliyun_auth_status_t status =
        aliyun_auth_password(id.sign_method, device->device_secret, id.id, dn, pk,
                             id.has_timestamp ? id.timestamp : NULL, expected, sizeof expected);
    if (status != ALIYUN_AUTH_OK) {
        return refuse(mqtt_id, aliyun_auth_strerror(status));
    }
    bool match = hex_equal_constant_time(expected, auth->password);
    memset(expected, 0, sizeof expected);
    if (!match) {
        return refuse(mqtt_id, "bad password (signature does not match)");
    }
    char username[ALIYUN_AUTH_USERNAME_SIZE];
    snprintf(username, sizeof username, "%s&%s", dn, pk);
    if (connected_ids_taken_by_other(id.id, username)) {
        /* Mosquitto would hand the id to the newcomer and close the first device: the platform refuses instead */
        return refuse(mqtt_id, "client id in use by another device");
    }
    if (!connected_ids_add(auth->client, id.id, username)
        || (id.server_subscribe && !server_subs_add(auth->client, mqtt_id, pk, dn))) {
        connected_ids_remove(auth->client);
        return refuse(mqtt_id, "out of memory");
    }
    kick_older_connections(auth->client, username);
    publish_presence(pk, dn, "online", auth->client);
    return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    const struct mosquitto_evt_acl_check *acl = event_data;
    const char *username = mosquitto_client_username(acl->client);
    char dn[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char pk[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    if (acl->access == MOSQ_ACL_WRITE && acl->client == disconnecting_client) {
        disconnecting_client = NULL;
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "aliyun-auth: dropped the will of '%s': the platform has no will",
                             mosquitto_client_id(acl->client));
        return MOSQ_ERR_ACL_DENIED;
    }
    if (username != NULL && strcmp(username, CONSOLE_USERNAME) == 0) {
        return MOSQ_ERR_SUCCESS;
    }
    if (username == NULL || !split_username(username, dn, sizeof dn, pk, sizeof pk)) {
        return MOSQ_ERR_ACL_DENIED;
    }
    topic_direction_t direction = acl->access == MOSQ_ACL_WRITE ? TOPIC_UP : TOPIC_DOWN;
    if (topic_allowed_for_device(pk, dn, acl->topic, direction)) {
        if (acl->access == MOSQ_ACL_SUBSCRIBE) {
            server_subs_note_subscribe(acl->client, acl->topic);
        } else if (acl->access == MOSQ_ACL_UNSUBSCRIBE) {
            server_subs_note_unsubscribe(acl->client, acl->topic);
        }
        return MOSQ_ERR_SUCCESS;
    }
    if (acl->access != MOSQ_ACL_READ) {
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "aliyun-auth: denied %s on '%s' to '%s'",
                             acl->access == MOSQ_ACL_WRITE ? "publish" : "subscribe", acl->topic,
                             mosquitto_client_id(acl->client));
    }
    return MOSQ_ERR_ACL_DENIED;
}

static void deliver_server_subscribed(const char *mqtt_client_id, void *context)
{
    const struct mosquitto_evt_message *message = context;
    int rc = mosquitto_broker_publish_copy(mqtt_client_id, message->topic, (int)message->payloadlen, message->payload,
                                           SERVER_SUB_QOS, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "aliyun-auth: _ss delivery to '%s' failed (%d)", mqtt_client_id, rc);
    }
}

/* Every PUBLISH a client of this listener sends, before Mosquitto stores or forwards it (Mosquitto 2.0
 * plugin__handle_message copies `retain` back into the stored message; a status other than success or
 * MOSQ_ERR_ACL_DENIED makes handle__publish close the connection). Then the platform's message forwarding:
 * a published message matching a route is republished to its target. */
static int on_message(int event, void *event_data, void *userdata)
{
    (void)event;
    struct mosquitto_evt_message *message = event_data;
    const plugin_state_t *state = userdata;
    if (message->payloadlen > PAYLOAD_MAX_BYTES) {
        refuse(mosquitto_client_id(message->client), "PUBLISH payload over 256 KB");
        return MOSQ_ERR_OVERSIZE_PACKET;
    }
    /* The platform keeps no retained messages: the flag is dropped, so nothing is replayed to later
     * subscribers (Aliyun "MQTT standard": retained messages not supported). */
    message->retain = false;
    server_subs_targets(message->topic, deliver_server_subscribed, message);
    for (size_t i = 0; i < state->rules.route_count; i++) {
        const route_entry_t *route = &state->rules.routes[i];
        if (!topic_filter_matches(route->from_filter, message->topic)) {
            continue;
        }
        int rc = mosquitto_broker_publish_copy(NULL, route->to_topic, (int)message->payloadlen, message->payload,
                                               message->qos, false, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_WARNING, "aliyun-auth: route to '%s' failed (%d)", route->to_topic, rc);
        }
    }
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    const struct mosquitto_evt_disconnect *disconnect = event_data;
    disconnecting_client = disconnect->client;
    const char *username = mosquitto_client_username(disconnect->client);
    char dn[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char pk[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    server_subs_remove(disconnect->client);
    if (connected_ids_remove(disconnect->client) && username != NULL && !connected_ids_username_held(username)
        && split_username(username, dn, sizeof dn, pk, sizeof pk)) {
        publish_presence(pk, dn, "offline", disconnect->client);
    }
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) {
            return 5;
        }
    }
    return -1;
}

static int parse_options(plugin_state_t *state, struct mosquitto_opt *options, int option_count,
                         const char **rules_path)
{
    *rules_path = NULL;
    state->secure_mode = 2;
    state->max_skew_ms = 0;
    for (int i = 0; i < option_count; i++) {
        char *end = NULL;
        if (strcmp(options[i].key, "rules") == 0) {
            *rules_path = options[i].value;
        } else if (strcmp(options[i].key, "securemode") == 0) {
            state->secure_mode = (int)strtol(options[i].value, &end, 10);
            if (*end != '\0' || (state->secure_mode != 2 && state->secure_mode != 3)) {
                mosquitto_log_printf(MOSQ_LOG_ERR, "aliyun-auth: plugin_opt_securemode must be 2 or 3");
                return MOSQ_ERR_INVAL;
            }
        } else if (strcmp(options[i].key, "max_skew_s") == 0) {
            long long skew_s = strtoll(options[i].value, &end, 10);
            if (*end != '\0' || skew_s < 0 || skew_s > 315360000LL) {
                mosquitto_log_printf(MOSQ_LOG_ERR, "aliyun-auth: plugin_opt_max_skew_s must be 0..315360000");
                return MOSQ_ERR_INVAL;
            }
            state->max_skew_ms = skew_s * 1000LL;
        }
    }
    if (*rules_path == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "aliyun-auth: plugin_opt_rules is required");
        return MOSQ_ERR_INVAL;
    }
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options,
                          int option_count)
{
    plugin_state_t *state = calloc(1, sizeof *state);
    if (state == NULL) {
        return MOSQ_ERR_NOMEM;
    }
    state->id = identifier;
    const char *rules_path;
    int rc = parse_options(state, options, option_count, &rules_path);
    if (rc != MOSQ_ERR_SUCCESS) {
        free(state);
        return rc;
    }
    char error[128];
    if (device_rules_load(rules_path, &state->rules, error, sizeof error) != 0) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "aliyun-auth: %s: %s", rules_path, error);
        free(state);
        return MOSQ_ERR_INVAL;
    }
    if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, state) != 0
        || mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, state) != 0
        || mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, state) != 0
        || mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, state) != 0) {
        device_rules_free(&state->rules);
        free(state);
        return MOSQ_ERR_UNKNOWN;
    }
    *userdata = state;
    mosquitto_log_printf(MOSQ_LOG_INFO, "aliyun-auth: %zu devices, %zu routes, securemode %d, max skew %lld ms",
                         state->rules.device_count, state->rules.route_count, state->secure_mode,
                         state->max_skew_ms);
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)options;
    (void)option_count;
    plugin_state_t *state = userdata;
    if (state == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    mosquitto_callback_unregister(state->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(state->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(state->id, MOSQ_EVT_MESSAGE, on_message, NULL);
    mosquitto_callback_unregister(state->id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    server_subs_clear();
    connected_ids_clear(); /* cleanup runs at shutdown only: no listener is left to use the table */
    device_rules_free(&state->rules);
    free(state);
    return MOSQ_ERR_SUCCESS;
}
