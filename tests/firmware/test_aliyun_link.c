/* The connection state machine: events in, recorded actions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aliyun_link.h"

#define MAX_ACTIONS 256
#define SECRET "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t12"

typedef struct {
    alink_action_type_t type;
    char text[256];    /* log text, connect client id, subscribe/publish topic */
    char payload[512]; /* publish payload; connect "host|port|tls|username|password|keepalive" */
    unsigned index;
    int qos;
    bool on;
} recorded_t;

typedef struct {
    recorded_t actions[MAX_ACTIONS];
    size_t count;
} recorder_t;

static void record(void *ctx, const alink_action_t *a)
{
    recorder_t *r = ctx;
    assert_true(r->count < MAX_ACTIONS);
    recorded_t *x = &r->actions[r->count++];
    memset(x, 0, sizeof *x);
    x->type = a->type;
    switch (a->type) {
    case ALINK_ACT_LOG:
        snprintf(x->text, sizeof x->text, "%s", a->u.log.text);
        break;
    case ALINK_ACT_CONNECT:
        snprintf(x->text, sizeof x->text, "%s", a->u.connect.client_id);
        snprintf(x->payload, sizeof x->payload, "%s|%u|%d|%s|%s|%u", a->u.connect.host, (unsigned)a->u.connect.port,
                 a->u.connect.tls, a->u.connect.username, a->u.connect.password, (unsigned)a->u.connect.keepalive_s);
        break;
    case ALINK_ACT_SUBSCRIBE:
        snprintf(x->text, sizeof x->text, "%s", a->u.subscribe.topic);
        x->index = a->u.subscribe.index;
        x->qos = a->u.subscribe.qos;
        break;
    case ALINK_ACT_PUBLISH:
        snprintf(x->text, sizeof x->text, "%s", a->u.publish.topic);
        assert_true(a->u.publish.payload_len < sizeof x->payload);
        memcpy(x->payload, a->u.publish.payload, a->u.publish.payload_len);
        x->qos = a->u.publish.qos;
        break;
    case ALINK_ACT_SET_LED:
        x->on = a->u.set_led.on;
        break;
    default:
        break;
    }
}

typedef struct {
    alink_t core;
    recorder_t rec;
    alink_config_t cfg;
    uint64_t now;
    uint32_t random;
} fixture_t;

static fixture_t fx; /* alink_t is a few KB: static, as on the device */

static void setup_config(alink_config_t *cfg)
{
    alink_config_defaults(cfg);
    cfg->product_key = "a1pk";
    cfg->device_name = "dev1";
    cfg->device_secret = SECRET;
    cfg->client_id = "A4CF12345678";
    cfg->backoff_base_ms = 1000;
    cfg->backoff_cap_ms = 64000;
    cfg->stable_after_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->time_sync_timeout_ms = 20000;
    cfg->post_period_ms = 60000;
    cfg->restart_network_after_ms = 300000;
    cfg->reboot_after_ms = 900000;
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    setup_config(&fx.cfg);
    fx.now = 1000;
    fx.random = 0x9e3779b9u;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_OK);
    return 0;
}

static size_t feed(alink_event_t ev)
{
    size_t before = fx.rec.count;
    ev.now_ms = fx.now;
    fx.random = fx.random * 1664525u + 1013904223u;
    ev.random = fx.random;
    assert_int_equal(alink_handle(&fx.core, &ev), ALINK_OK);
    return before;
}

static size_t simple(alink_event_type_t type)
{
    alink_event_t ev = {.type = type};
    return feed(ev);
}

static size_t time_synced(uint64_t unix_ms)
{
    alink_event_t ev = {.type = ALINK_EV_TIME_SYNCED};
    ev.u.time_synced.unix_ms = unix_ms;
    return feed(ev);
}

static size_t refused(int code)
{
    alink_event_t ev = {.type = ALINK_EV_MQTT_REFUSED};
    ev.u.connack_code = code;
    return feed(ev);
}

static size_t suback(unsigned index, bool granted)
{
    alink_event_t ev = {.type = ALINK_EV_SUBACK};
    ev.u.suback.index = index;
    ev.u.suback.granted = granted;
    return feed(ev);
}

static size_t message(const char *topic, const char *payload)
{
    alink_event_t ev = {.type = ALINK_EV_MESSAGE};
    ev.u.message.topic = topic;
    ev.u.message.topic_len = strlen(topic);
    ev.u.message.payload = payload;
    ev.u.message.payload_len = strlen(payload);
    return feed(ev);
}

/* Ticks every second until `until_ms`. */
static size_t tick_until(uint64_t until_ms)
{
    size_t before = fx.rec.count;
    while (fx.now < until_ms) {
        fx.now = fx.now + 1000 > until_ms ? until_ms : fx.now + 1000;
        alink_event_t ev = {.type = ALINK_EV_TICK};
        ev.u.tick.rssi_dbm = -61;
        ev.u.tick.free_heap_bytes = 150000;
        feed(ev);
    }
    return before;
}

/* Ticks until the core is connecting again (bounded). */
static void tick_until_connecting(void)
{
    uint64_t limit = fx.now + 200000;
    while (alink_state(&fx.core) != ALINK_STATE_CONNECTING && fx.now < limit) {
        tick_until(fx.now + 1000);
    }
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_CONNECTING);
}

static const recorded_t *find(size_t from, alink_action_type_t type, const char *text)
{
    for (size_t i = from; i < fx.rec.count; i++) {
        if (fx.rec.actions[i].type == type && (!text || strcmp(fx.rec.actions[i].text, text) == 0)) {
            return &fx.rec.actions[i];
        }
    }
    return NULL;
}

static size_t count(size_t from, alink_action_type_t type)
{
    size_t n = 0;
    for (size_t i = from; i < fx.rec.count; i++) {
        n += fx.rec.actions[i].type == type;
    }
    return n;
}

/* The delay of the last "reconnecting in N ms" line from `from` on, or -1. */
static long last_delay(size_t from)
{
    long delay = -1;
    for (size_t i = from; i < fx.rec.count; i++) {
        unsigned long ms;
        if (fx.rec.actions[i].type == ALINK_ACT_LOG && sscanf(fx.rec.actions[i].text, "aliyun: reconnecting in %lu ms", &ms) == 1) {
            delay = (long)ms;
        }
    }
    return delay;
}

#define LOGGED(from, line) assert_non_null(find((from), ALINK_ACT_LOG, (line)))
#define SET_TOPIC "/sys/a1pk/dev1/thing/service/property/set"
#define SETLED_TOPIC "/a1pk/dev1/user/setled"
#define POST_TOPIC "/sys/a1pk/dev1/thing/event/property/post"

static void go_online(void)
{
    if (alink_state(&fx.core) == ALINK_STATE_WAIT_NETWORK) {
        simple(ALINK_EV_NET_UP);
    }
    if (alink_state(&fx.core) == ALINK_STATE_WAIT_TIME) {
        time_synced(1700000000000ull);
    }
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_CONNECTING);
    simple(ALINK_EV_MQTT_CONNECTED);
    suback(0, true);
    suback(1, true);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_ONLINE);
}

static void test_start_up_to_online(void **state)
{
    (void)state;
    /* init names the device it read, never its secret, and does nothing else yet */
    assert_int_equal(fx.rec.count, 1);
    LOGGED(0, "aliyun: triple loaded: dev1&a1pk");
    assert_null(strstr(fx.rec.actions[0].text, SECRET));
    size_t at = simple(ALINK_EV_NET_UP);
    LOGGED(at, "aliyun: network up");
    LOGGED(at, "aliyun: waiting for time sync");
    assert_null(find(0, ALINK_ACT_CONNECT, NULL));
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_WAIT_TIME);

    fx.now = 5000;
    time_synced(1700000000000ull); /* wall clock at now=5000 */
    fx.now = 5000;
    LOGGED(at, "aliyun: time synced");
    const recorded_t *c = find(at, ALINK_ACT_CONNECT, NULL);
    assert_non_null(c);
    assert_string_equal(c->text, "A4CF12345678|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|");
    char expected_password[ALIYUN_AUTH_PASSWORD_SIZE];
    assert_int_equal(aliyun_auth_password(ALIYUN_SIGN_HMACSHA1, SECRET, "A4CF12345678", "dev1", "a1pk",
                                          "1700000000000", expected_password, sizeof expected_password),
                     ALIYUN_AUTH_OK);
    char expected[512];
    snprintf(expected, sizeof expected, "a1pk.iot-as-mqtt.cn-shanghai.aliyuncs.com|8883|1|dev1&a1pk|%s|120",
             expected_password);
    assert_string_equal(c->payload, expected);
    LOGGED(at, "aliyun: connecting to a1pk.iot-as-mqtt.cn-shanghai.aliyuncs.com:8883 as "
               "A4CF12345678|securemode=2,signmethod=hmacsha1,timestamp=1700000000000|");

    at = simple(ALINK_EV_MQTT_CONNECTED);
    LOGGED(at, "aliyun: mqtt connected");
    const recorded_t *s0 = find(at, ALINK_ACT_SUBSCRIBE, SET_TOPIC);
    const recorded_t *s1 = find(at, ALINK_ACT_SUBSCRIBE, SETLED_TOPIC);
    assert_non_null(s0);
    assert_non_null(s1);
    assert_int_equal(s0->index, 0);
    assert_int_equal(s1->index, 1);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_SUBSCRIBING);

    at = suback(1, true);
    LOGGED(at, "aliyun: subscribed " SETLED_TOPIC);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_SUBSCRIBING);
    suback(1, true); /* a duplicate changes nothing */
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_SUBSCRIBING);
    at = suback(0, true);
    LOGGED(at, "aliyun: subscribed " SET_TOPIC);
    LOGGED(at, "aliyun: online");
    const recorded_t *post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_string_equal(post->payload, "{\"id\":\"1\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":0,\"RSSI\":0,"
                                       "\"FreeHeap\":0},\"method\":\"thing.event.property.post\"}");
    LOGGED(at, "aliyun: property post id=1");
}

static void test_timestamp_follows_the_clock_and_fixed_mode(void **state)
{
    (void)state;
    time_synced(1700000000000ull); /* before the network: remembered */
    fx.now += 2500;
    size_t at = simple(ALINK_EV_NET_UP);
    const recorded_t *c = find(at, ALINK_ACT_CONNECT, NULL);
    assert_non_null(c);
    assert_string_equal(c->text, "A4CF12345678|securemode=2,signmethod=hmacsha1,timestamp=1700000002500|");

    fx.cfg.timestamp_mode = ALINK_TIMESTAMP_FIXED;
    fx.cfg.sign_method = ALIYUN_SIGN_HMACSHA256;
    fx.cfg.client_id = NULL; /* defaults to the DeviceName */
    fx.cfg.endpoint = "iot-06z00ab.mqtt.iothub.aliyuncs.com";
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_OK);
    time_synced(1700000000000ull);
    at = simple(ALINK_EV_NET_UP);
    c = find(at, ALINK_ACT_CONNECT, NULL);
    assert_non_null(c);
    assert_string_equal(c->text, "dev1|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|");
    assert_int_equal(strncmp(c->payload, "iot-06z00ab.mqtt.iothub.aliyuncs.com|8883|", 42), 0);
}

static void test_never_connects_with_an_unset_clock(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    size_t at = tick_until(19000);
    assert_null(find(at, ALINK_ACT_LOG, "aliyun: time sync overdue: not connecting with an unset clock"));
    tick_until(120000);
    assert_null(find(0, ALINK_ACT_CONNECT, NULL));
    LOGGED(at, "aliyun: time sync overdue: not connecting with an unset clock");
    size_t overdue = 0;
    for (size_t i = 0; i < fx.rec.count; i++) {
        overdue += strstr(fx.rec.actions[i].text, "overdue") != NULL;
    }
    assert_int_equal(overdue, 1);
    at = time_synced(1700000000000ull);
    assert_non_null(find(at, ALINK_ACT_CONNECT, NULL));
}

static void test_led_commands(void **state)
{
    (void)state;
    go_online();
    size_t at = message(SETLED_TOPIC, "{\"dn\":\"dev1\",\"s\":1}");
    const recorded_t *led = find(at, ALINK_ACT_SET_LED, NULL);
    assert_non_null(led);
    assert_true(led->on);
    LOGGED(at, "aliyun: led on");
    const recorded_t *post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_non_null(strstr(post->payload, "\"LightSwitch\":1"));
    assert_non_null(strstr(post->payload, "\"id\":\"2\"")); /* ids rise: 1 was the online post */
    assert_true(alink_led_on(&fx.core));

    at = message(SETLED_TOPIC, "{\"dn\":\"dev2\",\"s\":0}");
    LOGGED(at, "aliyun: ignored message: other device");
    assert_null(find(at, ALINK_ACT_SET_LED, NULL));
    assert_true(alink_led_on(&fx.core));

    at = message(SET_TOPIC, "{\"id\":\"77\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":0},"
                            "\"method\":\"thing.service.property.set\"}");
    led = find(at, ALINK_ACT_SET_LED, NULL);
    assert_non_null(led);
    assert_false(led->on);
    LOGGED(at, "aliyun: led off");
    const recorded_t *reply = find(at, ALINK_ACT_PUBLISH, SET_TOPIC "_reply");
    assert_non_null(reply);
    assert_string_equal(reply->payload,
                        "{\"id\":\"77\",\"code\":200,\"data\":{},\"message\":\"success\",\"version\":\"1.0\"}");
    LOGGED(at, "aliyun: property set id=77 code=200");
    post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_non_null(strstr(post->payload, "\"LightSwitch\":0,\"RSSI\""));

    at = message(SET_TOPIC, "{\"id\":\"78\",\"params\":{\"LightSwitch\":0}}"); /* no change: no post */
    assert_non_null(find(at, ALINK_ACT_PUBLISH, SET_TOPIC "_reply"));
    assert_null(find(at, ALINK_ACT_PUBLISH, POST_TOPIC));

    at = message(SET_TOPIC, "{\"id\":\"79\",\"params\":{\"LightSwitch\":7}}");
    reply = find(at, ALINK_ACT_PUBLISH, SET_TOPIC "_reply");
    assert_non_null(reply);
    assert_non_null(strstr(reply->payload, "\"code\":460"));
    assert_null(find(at, ALINK_ACT_SET_LED, NULL));
    LOGGED(at, "aliyun: property set id=79 code=460");
}

static void test_hostile_messages_change_nothing(void **state)
{
    (void)state;
    go_online();
    const char *bad[][2] = {
        {SET_TOPIC, "not json"},
        {SET_TOPIC, "{\"params\":{\"LightSwitch\":1}}"},
        {SET_TOPIC, "{\"id\":\"1\\\",\\\"code\\\":200\",\"params\":{\"LightSwitch\":1}}"},
        {SET_TOPIC, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["},
        {SETLED_TOPIC, "{\"dn\":\"dev1\",\"s\":2}"},
        {SETLED_TOPIC, "{\"s\":1}"},
        {"/a1pk/dev1/user/other", "{\"dn\":\"dev1\",\"s\":1}"},
        {"/a1pk/dev1/user/setled/x", "{\"dn\":\"dev1\",\"s\":1}"},
    };
    const char *why[] = {"not JSON", "no id", "bad id", "too deeply nested", "bad s", "no dn", "unknown topic",
                         "unknown topic"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t at = message(bad[i][0], bad[i][1]);
        char line[80];
        snprintf(line, sizeof line, "aliyun: ignored message: %s", why[i]);
        LOGGED(at, line);
        assert_int_equal(count(at, ALINK_ACT_SET_LED) + count(at, ALINK_ACT_PUBLISH), 0);
    }
    assert_false(alink_led_on(&fx.core));
    alink_event_t ev = {.type = ALINK_EV_MESSAGE};
    ev.u.message.topic = SET_TOPIC;
    ev.u.message.topic_len = strlen(SET_TOPIC);
    ev.u.message.too_large = true; /* the shell could not hold it: no payload */
    size_t at = feed(ev);
    LOGGED(at, "aliyun: ignored message: too large");
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 0);
}

static void test_messages_outside_a_session_are_ignored(void **state)
{
    (void)state;
    size_t at = message(SETLED_TOPIC, "{\"dn\":\"dev1\",\"s\":1}");
    assert_int_equal(fx.rec.count, at);
    assert_false(alink_led_on(&fx.core));
}

static void test_auth_refusal_backs_off_to_the_cap(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    size_t at = refused(4);
    LOGGED(at, "aliyun: connect refused: bad username or password");
    assert_non_null(find(at, ALINK_ACT_DISCONNECT, NULL));
    long delay = last_delay(at);
    assert_true(delay >= 32000 && delay <= 64000);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    uint64_t refused_at = fx.now;
    at = tick_until(refused_at + (uint64_t)delay - 1);
    assert_null(find(at, ALINK_ACT_CONNECT, NULL)); /* not every 10 s */
    at = tick_until(refused_at + (uint64_t)delay + 1000);
    assert_non_null(find(at, ALINK_ACT_CONNECT, NULL));

    at = refused(5);
    LOGGED(at, "aliyun: connect refused: not authorized");
    delay = last_delay(at);
    assert_true(delay >= 32000 && delay <= 64000);
}

static void test_network_flap_keeps_the_backoff(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    uint64_t refused_at = fx.now;
    size_t at = refused(4);
    long delay = last_delay(at);
    simple(ALINK_EV_NET_DOWN);
    at = simple(ALINK_EV_NET_UP);
    assert_null(find(at, ALINK_ACT_CONNECT, NULL));
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    at = tick_until(refused_at + (uint64_t)delay - 1);
    assert_null(find(at, ALINK_ACT_CONNECT, NULL));
    at = tick_until(refused_at + (uint64_t)delay + 1000);
    assert_non_null(find(at, ALINK_ACT_CONNECT, NULL));
}

static void test_other_refusals_and_meanings(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    size_t at = refused(3);
    LOGGED(at, "aliyun: connect refused: server unavailable");
    long delay = last_delay(at);
    assert_true(delay >= 500 && delay <= 1000); /* an ordinary failure starts at the base */
    const char *meanings[] = {"unacceptable protocol version", "identifier rejected"};
    for (int code = 1; code <= 2; code++) {
        tick_until_connecting();
        at = refused(code);
        char line[96];
        snprintf(line, sizeof line, "aliyun: connect refused: %s", meanings[code - 1]);
        LOGGED(at, line);
    }
    tick_until_connecting();
    at = refused(77);
    LOGGED(at, "aliyun: connect refused: code 77");
    at = refused(4); /* not connecting any more: a stale CONNACK is ignored */
    assert_int_equal(fx.rec.count, at);
}

static void test_backoff_grows_then_resets_after_a_stable_connection(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    long ceiling = 1000;
    for (int i = 0; i < 8; i++) {
        size_t at = simple(ALINK_EV_MQTT_DISCONNECTED);
        LOGGED(at, "aliyun: connect failed");
        long delay = last_delay(at);
        assert_true(delay >= ceiling / 2 && delay <= ceiling);
        ceiling = ceiling * 2 > 64000 ? 64000 : ceiling * 2;
        tick_until(fx.now + (uint64_t)delay);
        assert_int_equal(alink_state(&fx.core), ALINK_STATE_CONNECTING);
    }
    go_online();
    tick_until(fx.now + 5000); /* too short to count as stable */
    size_t at = simple(ALINK_EV_MQTT_DISCONNECTED);
    LOGGED(at, "aliyun: mqtt disconnected");
    long delay = last_delay(at);
    assert_true(delay >= 32000 && delay <= 64000);
    tick_until(fx.now + (uint64_t)delay);
    go_online();
    tick_until(fx.now + 31000); /* stable */
    at = simple(ALINK_EV_MQTT_DISCONNECTED);
    delay = last_delay(at);
    assert_true(delay >= 500 && delay <= 1000);
}

static void test_connect_and_subscribe_timeouts(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    size_t at = tick_until(fx.now + 9000);
    assert_null(find(at, ALINK_ACT_LOG, "aliyun: connect timed out"));
    at = tick_until(fx.now + 1000);
    LOGGED(at, "aliyun: connect timed out");
    assert_non_null(find(at, ALINK_ACT_DISCONNECT, NULL));
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    tick_until(fx.now + 2000);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_CONNECTING);
    simple(ALINK_EV_MQTT_CONNECTED);
    at = tick_until(fx.now + 10000); /* SUBACKs never came */
    LOGGED(at, "aliyun: connect timed out");
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
}

static void test_subscribe_refused_still_goes_online(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    simple(ALINK_EV_MQTT_CONNECTED);
    size_t at = suback(0, false);
    LOGGED(at, "aliyun: subscribe refused " SET_TOPIC);
    suback(1, true);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_ONLINE);
}

static void test_network_loss_and_return(void **state)
{
    (void)state;
    go_online();
    size_t at = simple(ALINK_EV_NET_DOWN);
    LOGGED(at, "aliyun: network lost");
    assert_non_null(find(at, ALINK_ACT_DISCONNECT, NULL));
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_WAIT_NETWORK);
    at = tick_until(fx.now + 120000);
    assert_null(find(at, ALINK_ACT_CONNECT, NULL));
    at = simple(ALINK_EV_MQTT_DISCONNECTED); /* the client's own report, late: ignored */
    assert_int_equal(fx.rec.count, at);
    at = simple(ALINK_EV_NET_UP);
    LOGGED(at, "aliyun: network up");
    assert_non_null(find(at, ALINK_ACT_CONNECT, NULL)); /* the clock is still set */
}

static void test_long_outage_escalates_once_each(void **state)
{
    (void)state;
    go_online();
    uint64_t lost = fx.now;
    simple(ALINK_EV_NET_DOWN);
    size_t at = tick_until(lost + 299000);
    assert_null(find(at, ALINK_ACT_RESTART_NETWORK, NULL));
    at = tick_until(lost + 300000);
    assert_non_null(find(at, ALINK_ACT_RESTART_NETWORK, NULL));
    LOGGED(at, "aliyun: offline for 300 s: restarting network");
    at = tick_until(lost + 899000);
    assert_int_equal(count(at, ALINK_ACT_RESTART_NETWORK), 0);
    assert_int_equal(count(at, ALINK_ACT_REBOOT), 0);
    at = tick_until(lost + 960000);
    assert_int_equal(count(at, ALINK_ACT_REBOOT), 1);
    LOGGED(at, "aliyun: offline for 900 s: rebooting");
}

static void test_outage_clock_covers_refusals_and_resets_online(void **state)
{
    (void)state;
    uint64_t start = fx.now;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    /* refused again and again (e.g. credentials revoked): escalation still happens */
    while (fx.now < start + 301000) {
        if (alink_state(&fx.core) == ALINK_STATE_CONNECTING) {
            refused(4);
        }
        tick_until(fx.now + 1000);
    }
    assert_non_null(find(0, ALINK_ACT_RESTART_NETWORK, NULL));
    simple(ALINK_EV_NET_UP);
    tick_until_connecting(); /* after the pending backoff: the restart does not cut it short */
    go_online();
    uint64_t online = fx.now;
    size_t at;
    at = tick_until(online + 1000000); /* online for long: nothing escalates */
    assert_int_equal(count(at, ALINK_ACT_RESTART_NETWORK) + count(at, ALINK_ACT_REBOOT), 0);
}

static void test_periodic_posts_with_rising_ids(void **state)
{
    (void)state;
    go_online();
    size_t at = tick_until(fx.now + 180000);
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 3);
    LOGGED(at, "aliyun: property post id=2");
    LOGGED(at, "aliyun: property post id=3");
    LOGGED(at, "aliyun: property post id=4");
    const recorded_t *post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(strstr(post->payload, "\"RSSI\":-61,\"FreeHeap\":150000"));
}

static void test_secrets_never_logged(void **state)
{
    (void)state;
    go_online();
    simple(ALINK_EV_MQTT_DISCONNECTED);
    tick_until(fx.now + 5000);
    const recorded_t *c = find(0, ALINK_ACT_CONNECT, NULL);
    const char *password = strrchr(c->payload, '|'); /* "...|password|keepalive": find the password */
    char pw[ALIYUN_AUTH_PASSWORD_SIZE] = {0};
    const char *end = password;
    const char *startp = end - 1;
    while (*startp != '|') {
        startp--;
    }
    memcpy(pw, startp + 1, (size_t)(end - startp - 1));
    assert_int_equal(strlen(pw), 40);
    for (size_t i = 0; i < fx.rec.count; i++) {
        if (fx.rec.actions[i].type == ALINK_ACT_LOG) {
            assert_null(strstr(fx.rec.actions[i].text, SECRET));
            assert_null(strstr(fx.rec.actions[i].text, pw));
        }
    }
    /* the core keeps no copy of the password after the connect action */
    const unsigned char *bytes = (const unsigned char *)&fx.core;
    for (size_t i = 0; i + strlen(pw) <= sizeof fx.core; i++) {
        assert_false(memcmp(bytes + i, pw, strlen(pw)) == 0);
    }
}

static size_t disconnected(alink_cert_refusal_t refusal)
{
    alink_event_t ev = {.type = ALINK_EV_MQTT_DISCONNECTED};
    ev.u.cert_refusal = refusal;
    return feed(ev);
}

/* The index of the first action from `from` on matching type (and text), or SIZE_MAX. */
static size_t index_of(size_t from, alink_action_type_t type, const char *text)
{
    const recorded_t *a = find(from, type, text);
    return a ? (size_t)(a - fx.rec.actions) : SIZE_MAX;
}

static void test_every_lost_session_schedules_a_reconnect_before_closing(void **state)
{
    (void)state;
    go_online();
    size_t at = simple(ALINK_EV_MQTT_DISCONNECTED); /* kicked by a second connection */
    size_t line = index_of(at, ALINK_ACT_LOG, "aliyun: mqtt disconnected");
    assert_true(line != SIZE_MAX);
    assert_true(last_delay(at) >= 0);
    /* the reconnect is on the serial line before the shell closes its client, however long that takes */
    size_t close = index_of(at, ALINK_ACT_DISCONNECT, NULL);
    assert_true(close != SIZE_MAX);
    for (size_t i = line; i < close; i++) {
        unsigned long ms;
        if (fx.rec.actions[i].type == ALINK_ACT_LOG &&
            sscanf(fx.rec.actions[i].text, "aliyun: reconnecting in %lu ms", &ms) == 1) {
            return;
        }
    }
    fail_msg("'reconnecting in' came after ALINK_ACT_DISCONNECT");
}

static void test_esp_mqtt_event_orders_all_end_in_one_reconnect(void **state)
{
    (void)state;
    /* esp-mqtt: a refused CONNACK is MQTT_EVENT_ERROR, then MQTT_EVENT_DISCONNECTED */
    go_online();
    simple(ALINK_EV_MQTT_DISCONNECTED);
    tick_until_connecting();
    size_t at = refused(3);
    at = simple(ALINK_EV_MQTT_DISCONNECTED);
    assert_int_equal(fx.rec.count, at); /* already in backoff: nothing more */
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    /* a second DISCONNECTED for the same session (transport error and abort) is ignored */
    tick_until_connecting();
    simple(ALINK_EV_MQTT_CONNECTED);
    at = simple(ALINK_EV_MQTT_DISCONNECTED);
    assert_int_equal(last_delay(at) >= 0, 1);
    size_t again = simple(ALINK_EV_MQTT_DISCONNECTED);
    assert_int_equal(fx.rec.count, again);
    /* the core gave an attempt up (timeout) and esp-mqtt connects after all: that session is closed */
    tick_until_connecting();
    tick_until(fx.now + fx.cfg.connect_timeout_ms);
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    at = simple(ALINK_EV_MQTT_CONNECTED);
    assert_non_null(find(at, ALINK_ACT_DISCONNECT, NULL));
    assert_null(find(at, ALINK_ACT_LOG, "aliyun: mqtt connected"));
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_BACKOFF);
    /* and the backoff still ends in a connect */
    tick_until_connecting();
}

static void test_a_certificate_refusal_is_named(void **state)
{
    (void)state;
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    size_t at = disconnected(ALINK_CERT_EXPIRED);
    LOGGED(at, "aliyun: server certificate rejected: expired");
    LOGGED(at, "aliyun: connect failed");
    assert_true(last_delay(at) >= 0);
    tick_until_connecting();
    at = disconnected(ALINK_CERT_UNTRUSTED);
    LOGGED(at, "aliyun: server certificate rejected: unknown CA");
    tick_until_connecting();
    at = disconnected(ALINK_CERT_ACCEPTED);
    LOGGED(at, "aliyun: connect failed");
    for (size_t i = at; i < fx.rec.count; i++) {
        assert_null(strstr(fx.rec.actions[i].text, "certificate"));
    }
}

static void test_init_checks_the_configuration(void **state)
{
    (void)state;
    alink_config_t cfg;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    setup_config(&cfg);
    cfg.keepalive_s = 29;
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_ERR_CONFIG);
    cfg.keepalive_s = 1201;
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_ERR_CONFIG);
    cfg.keepalive_s = 30;
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_OK);
    cfg.keepalive_s = 1200;
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_OK);
    cfg.device_secret = "";
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, &bad), ALINK_ERR_CONFIG);
    assert_int_equal(bad, ALIYUN_FIELD_DEVICE_SECRET);
    setup_config(&cfg);
    cfg.device_name = NULL; /* the triple is missing */
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, &bad), ALINK_ERR_CONFIG);
    assert_int_equal(bad, ALIYUN_FIELD_DEVICE_NAME);
    setup_config(&cfg);
    cfg.backoff_cap_ms = 10;
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_ERR_CONFIG);
    setup_config(&cfg);
    assert_int_equal(alink_init(&fx.core, &cfg, NULL, &fx.rec, NULL), ALINK_ERR_ARG);
    assert_int_equal(alink_init(NULL, &cfg, record, &fx.rec, NULL), ALINK_ERR_ARG);
    assert_int_equal(alink_init(&fx.core, &cfg, record, &fx.rec, NULL), ALINK_OK);
    alink_event_t ev = {.type = (alink_event_type_t)99};
    assert_int_equal(alink_handle(&fx.core, &ev), ALINK_ERR_ARG);
    ev.type = ALINK_EV_MESSAGE; /* NULL topic */
    assert_int_equal(alink_handle(&fx.core, &ev), ALINK_ERR_ARG);
    assert_int_equal(alink_handle(&fx.core, NULL), ALINK_ERR_ARG);
    assert_string_equal(alink_state_name(ALINK_STATE_ONLINE), "online");
}

/* A product model wired in: sets go through the engine, the LED follows LightSwitch, posts carry the model. */
typedef struct {
    bool light;
    int32_t brightness;
    float temperature;
} lamp_t;
static const alink_thing_field_t lamp_fields[] = {
    {.identifier = "LightSwitch", .type = ALINK_THING_BOOL, .access = ALINK_THING_RW,
     .offset = offsetof(lamp_t, light), .size = sizeof(bool)},
    {.identifier = "Brightness", .type = ALINK_THING_INT, .access = ALINK_THING_RW, .max = 100,
     .offset = offsetof(lamp_t, brightness), .size = sizeof(int32_t)},
    {.identifier = "CurrentTemperature", .type = ALINK_THING_FLOAT, .min = -40, .max = 120,
     .offset = offsetof(lamp_t, temperature), .size = sizeof(float)},
};
static const alink_thing_model_t lamp_model = {lamp_fields, 3, sizeof(lamp_t), NULL, 0, NULL, 0};
static lamp_t lamp, lamp_staging;
static char lamp_payload[512];
static uint64_t lamp_applied;

static void lamp_apply(void *ctx, uint64_t changed)
{
    (void)ctx;
    lamp_applied |= changed;
}

static void test_thing_model_sets_and_posts(void **state)
{
    (void)state;
    memset(&lamp, 0, sizeof lamp);
    lamp.temperature = 21.5f;
    lamp_applied = 0;
    fx.cfg.thing_model = &lamp_model;
    fx.cfg.thing_props = &lamp;
    fx.cfg.thing_staging = &lamp_staging;
    fx.cfg.thing_payload = lamp_payload;
    fx.cfg.thing_payload_size = sizeof lamp_payload;
    fx.cfg.thing_applied = lamp_apply;
    fx.cfg.thing_staging = NULL;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_ERR_CONFIG);
    fx.cfg.thing_staging = &lamp_staging;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_OK);
    go_online();
    const recorded_t *online_post = find(0, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(online_post);
    assert_string_equal(online_post->payload, "{\"id\":\"1\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":0,"
                                              "\"Brightness\":0,\"CurrentTemperature\":21.5},"
                                              "\"method\":\"thing.event.property.post\"}");

    size_t at = message(SET_TOPIC, "{\"id\":\"40\",\"params\":{\"LightSwitch\":1,\"Brightness\":60}}");
    LOGGED(at, "aliyun: property set id=40 code=200");
    const recorded_t *reply = find(at, ALINK_ACT_PUBLISH, SET_TOPIC "_reply");
    assert_non_null(reply);
    assert_string_equal(reply->payload,
                        "{\"id\":\"40\",\"code\":200,\"data\":{},\"message\":\"success\",\"version\":\"1.0\"}");
    const recorded_t *led = find(at, ALINK_ACT_SET_LED, NULL);
    assert_non_null(led);
    assert_true(led->on);
    assert_true(lamp_applied == 3u);
    const recorded_t *post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_non_null(strstr(post->payload, "\"params\":{\"LightSwitch\":1,\"Brightness\":60}"));

    at = message(SET_TOPIC, "{\"id\":\"41\",\"params\":{\"Brightness\":101}}");
    LOGGED(at, "aliyun: property set id=41 code=460");
    reply = find(at, ALINK_ACT_PUBLISH, SET_TOPIC "_reply");
    assert_non_null(reply);
    assert_non_null(strstr(reply->payload, "\"message\":\"bad value: Brightness\""));
    assert_null(find(at, ALINK_ACT_PUBLISH, POST_TOPIC));
    at = message(SET_TOPIC, "{\"id\":\"42\",\"params\":{\"CurrentTemperature\":30}}");
    LOGGED(at, "aliyun: property set id=42 code=460");
    assert_true(lamp.brightness == 60 && lamp.temperature == 21.5f);

    /* the seed's LED command sets LightSwitch: property, application and post follow */
    lamp_applied = 0;
    at = message(SETLED_TOPIC, "{\"dn\":\"dev1\",\"s\":0}");
    LOGGED(at, "aliyun: led off");
    assert_false(lamp.light);
    assert_true(lamp_applied == 1u);
    post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_non_null(strstr(post->payload, "\"params\":{\"LightSwitch\":0}"));
    at = message(SETLED_TOPIC, "{\"dn\":\"dev1\",\"s\":0}"); /* no change: nothing posted */
    assert_null(find(at, ALINK_ACT_PUBLISH, POST_TOPIC));
}

/* A reading that changes is posted on the next TICK, alone, with its time, at most once per interval. */
static void test_thing_model_posts_changed_readings(void **state)
{
    (void)state;
    static lamp_t posted;
    memset(&lamp, 0, sizeof lamp);
    fx.cfg.thing_model = &lamp_model;
    fx.cfg.thing_props = &lamp;
    fx.cfg.thing_staging = &lamp_staging;
    fx.cfg.thing_payload = lamp_payload;
    fx.cfg.thing_payload_size = sizeof lamp_payload;
    fx.cfg.thing_posted = &posted;
    fx.cfg.thing_post_min_interval_ms = 5000;
    fx.cfg.thing_post_time = true;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_OK);
    go_online(); /* posts everything once (the online post) */
    size_t at = tick_until(fx.now + 3000);
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 0); /* nothing changed */
    lamp.temperature = 22.5f;
    at = tick_until(fx.now + 1000);
    const recorded_t *post = find(at, ALINK_ACT_PUBLISH, POST_TOPIC);
    assert_non_null(post);
    assert_non_null(strstr(post->payload, "\"params\":{\"CurrentTemperature\":{\"value\":22.5,\"time\":17000000"));
    assert_null(strstr(post->payload, "Brightness"));
    lamp.temperature = 23.5f;
    at = tick_until(fx.now + 4000);
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 0); /* rate limit: 5 s since the last change post */
    at = tick_until(fx.now + 1000);
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 1);
}

/* Thing-model services: async on thing/service/{id} -> {id}_reply, sync through RRPC. */
typedef struct {
    int32_t times;
} blink_in_t;
typedef struct {
    int32_t blinked;
} blink_out_t;
static const alink_thing_field_t blink_inputs[] = {
    {.identifier = "times", .type = ALINK_THING_INT, .min = 1, .max = 5, .offset = 0, .size = sizeof(int32_t)}};
static const alink_thing_field_t blink_outputs[] = {
    {.identifier = "blinked", .type = ALINK_THING_INT, .max = 5, .offset = 0, .size = sizeof(int32_t)}};
static int blink_run(const void *input, void *output)
{
    ((blink_out_t *)output)->blinked = ((const blink_in_t *)input)->times;
    return 200;
}
static const alink_thing_service_t lamp_services[] = {
    {.identifier = "Blink", .sync = false, .inputs = blink_inputs, .input_count = 1, .input_size = sizeof(blink_in_t),
     .outputs = blink_outputs, .output_count = 1, .output_size = sizeof(blink_out_t), .run = blink_run},
    {.identifier = "BlinkNow", .sync = true, .inputs = blink_inputs, .input_count = 1,
     .input_size = sizeof(blink_in_t), .outputs = blink_outputs, .output_count = 1,
     .output_size = sizeof(blink_out_t), .run = blink_run},
};
typedef struct {
    float temperature;
} alarm_t;
static const alink_thing_field_t alarm_outputs[] = {{.identifier = "CurrentTemperature", .type = ALINK_THING_FLOAT,
                                                     .min = -40, .max = 120, .offset = 0, .size = sizeof(float)}};
static const alink_thing_event_t lamp_events[] = {
    {.identifier = "TemperatureAlarm", .outputs = alarm_outputs, .output_count = 1}};
static const alink_thing_model_t lamp_service_model = {lamp_fields, 3, sizeof(lamp_t), lamp_events, 1,
                                                       lamp_services, 2};

static void test_thing_model_services(void **state)
{
    (void)state;
    static blink_in_t in;
    static blink_out_t out;
    fx.cfg.thing_model = &lamp_service_model;
    fx.cfg.thing_props = &lamp;
    fx.cfg.thing_staging = &lamp_staging;
    fx.cfg.thing_payload = lamp_payload;
    fx.cfg.thing_payload_size = sizeof lamp_payload;
    fx.cfg.thing_input = &in;
    fx.cfg.thing_input_size = sizeof in;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_ERR_CONFIG); /* no output room */
    fx.cfg.thing_output = &out;
    fx.cfg.thing_output_size = sizeof out;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, &fx.rec, NULL), ALINK_OK);
    simple(ALINK_EV_NET_UP);
    time_synced(1700000000000ull);
    size_t at = simple(ALINK_EV_MQTT_CONNECTED);
    assert_non_null(find(at, ALINK_ACT_SUBSCRIBE, "/sys/a1pk/dev1/thing/service/+"));
    assert_non_null(find(at, ALINK_ACT_SUBSCRIBE, "/sys/a1pk/dev1/rrpc/request/+"));
    for (unsigned i = 0; i < 4; i++) {
        suback(i, true);
    }
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_ONLINE);

    at = message("/sys/a1pk/dev1/thing/service/Blink", "{\"id\":\"50\",\"params\":{\"times\":3}}");
    LOGGED(at, "aliyun: service Blink id=50 code=200");
    const recorded_t *reply = find(at, ALINK_ACT_PUBLISH, "/sys/a1pk/dev1/thing/service/Blink_reply");
    assert_non_null(reply);
    assert_string_equal(reply->payload, "{\"id\":\"50\",\"code\":200,\"data\":{\"blinked\":3},"
                                        "\"message\":\"success\",\"version\":\"1.0\"}");
    at = message("/sys/a1pk/dev1/thing/service/Blink", "{\"id\":\"51\",\"params\":{\"times\":6}}");
    LOGGED(at, "aliyun: service Blink id=51 code=460");

    at = message("/sys/a1pk/dev1/rrpc/request/1234567",
                 "{\"id\":\"52\",\"params\":{\"times\":2},\"method\":\"thing.service.BlinkNow\"}");
    LOGGED(at, "aliyun: service BlinkNow id=52 code=200");
    reply = find(at, ALINK_ACT_PUBLISH, "/sys/a1pk/dev1/rrpc/response/1234567");
    assert_non_null(reply);
    assert_non_null(strstr(reply->payload, "\"data\":{\"blinked\":2}"));

    /* a sync service is not run on the async topic, nor an async one through RRPC; odd ids are refused */
    at = message("/sys/a1pk/dev1/thing/service/BlinkNow", "{\"id\":\"53\",\"params\":{\"times\":1}}");
    LOGGED(at, "aliyun: ignored message: unknown service");
    at = message("/sys/a1pk/dev1/rrpc/request/9",
                 "{\"id\":\"54\",\"params\":{\"times\":1},\"method\":\"thing.service.Blink\"}");
    LOGGED(at, "aliyun: ignored message: unknown service");
    at = message("/sys/a1pk/dev1/rrpc/request/a-b",
                 "{\"id\":\"55\",\"params\":{\"times\":1},\"method\":\"thing.service.BlinkNow\"}");
    LOGGED(at, "aliyun: ignored message: bad rrpc id");
    assert_int_equal(count(at, ALINK_ACT_PUBLISH), 0);

    alarm_t alarm = {85.5f};
    at = fx.rec.count;
    fx.now += 250;
    assert_int_equal(alink_event_post(&fx.core, 0, &alarm, fx.now), ALINK_OK);
    const recorded_t *event = find(at, ALINK_ACT_PUBLISH, "/sys/a1pk/dev1/thing/event/TemperatureAlarm/post");
    assert_non_null(event);
    assert_non_null(strstr(event->payload, "\"params\":{\"value\":{\"CurrentTemperature\":85.5},\"time\":1700000000250}"));
    assert_non_null(strstr(event->payload, "\"method\":\"thing.event.TemperatureAlarm.post\""));
    assert_int_equal(alink_event_post(&fx.core, 1, &alarm, fx.now), ALINK_ERR_ARG);
    simple(ALINK_EV_NET_DOWN);
    assert_int_equal(alink_event_post(&fx.core, 0, &alarm, fx.now), ALINK_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_start_up_to_online, setup),
        cmocka_unit_test_setup(test_timestamp_follows_the_clock_and_fixed_mode, setup),
        cmocka_unit_test_setup(test_never_connects_with_an_unset_clock, setup),
        cmocka_unit_test_setup(test_led_commands, setup),
        cmocka_unit_test_setup(test_hostile_messages_change_nothing, setup),
        cmocka_unit_test_setup(test_messages_outside_a_session_are_ignored, setup),
        cmocka_unit_test_setup(test_auth_refusal_backs_off_to_the_cap, setup),
        cmocka_unit_test_setup(test_network_flap_keeps_the_backoff, setup),
        cmocka_unit_test_setup(test_other_refusals_and_meanings, setup),
        cmocka_unit_test_setup(test_backoff_grows_then_resets_after_a_stable_connection, setup),
        cmocka_unit_test_setup(test_connect_and_subscribe_timeouts, setup),
        cmocka_unit_test_setup(test_subscribe_refused_still_goes_online, setup),
        cmocka_unit_test_setup(test_network_loss_and_return, setup),
        cmocka_unit_test_setup(test_long_outage_escalates_once_each, setup),
        cmocka_unit_test_setup(test_outage_clock_covers_refusals_and_resets_online, setup),
        cmocka_unit_test_setup(test_periodic_posts_with_rising_ids, setup),
        cmocka_unit_test_setup(test_secrets_never_logged, setup),
        cmocka_unit_test_setup(test_init_checks_the_configuration, setup),
        cmocka_unit_test_setup(test_every_lost_session_schedules_a_reconnect_before_closing, setup),
        cmocka_unit_test_setup(test_esp_mqtt_event_orders_all_end_in_one_reconnect, setup),
        cmocka_unit_test_setup(test_a_certificate_refusal_is_named, setup),
        cmocka_unit_test_setup(test_thing_model_sets_and_posts, setup),
        cmocka_unit_test_setup(test_thing_model_services, setup),
        cmocka_unit_test_setup(test_thing_model_posts_changed_readings, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
