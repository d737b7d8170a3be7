/* OTA: the upgrade message's checks field by field, and the update as events in, actions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aliyun_link.h"

#define MAX_ACTIONS 128
#define SECRET "s3cr3tS3cr3tS3cr3tS3cr3tS3cr3t12"
#define UPGRADE_TOPIC "/ota/device/upgrade/a1pk/dev1"
#define INFORM_TOPIC "/ota/device/inform/a1pk/dev1"
#define PROGRESS_TOPIC "/ota/device/progress/a1pk/dev1"
#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SLOT 1000000u

typedef struct {
    alink_action_type_t type;
    char text[256];
    char payload[512];
    char url[ALINK_OTA_URL_MAX + 1];
    uint32_t size;
    int sign_method;
    unsigned index;
} recorded_t;

typedef struct {
    alink_t core;
    alink_config_t cfg;
    recorded_t actions[MAX_ACTIONS];
    size_t count;
    uint64_t now;
} fixture_t;

static fixture_t fx;

static void record(void *ctx, const alink_action_t *a)
{
    (void)ctx;
    assert_true(fx.count < MAX_ACTIONS);
    recorded_t *x = &fx.actions[fx.count++];
    memset(x, 0, sizeof *x);
    x->type = a->type;
    if (a->type == ALINK_ACT_LOG) {
        snprintf(x->text, sizeof x->text, "%s", a->u.log.text);
    } else if (a->type == ALINK_ACT_SUBSCRIBE) {
        snprintf(x->text, sizeof x->text, "%s", a->u.subscribe.topic);
        x->index = a->u.subscribe.index;
    } else if (a->type == ALINK_ACT_PUBLISH) {
        snprintf(x->text, sizeof x->text, "%s", a->u.publish.topic);
        assert_true(a->u.publish.payload_len < sizeof x->payload);
        memcpy(x->payload, a->u.publish.payload, a->u.publish.payload_len);
    } else if (a->type == ALINK_ACT_OTA_BEGIN) {
        snprintf(x->url, sizeof x->url, "%s", a->u.ota_begin.url);
        snprintf(x->text, sizeof x->text, "%s", a->u.ota_begin.version);
        x->size = a->u.ota_begin.size;
        x->sign_method = (int)a->u.ota_begin.sign_method;
    }
}

static void feed(alink_event_t ev)
{
    ev.now_ms = fx.now;
    ev.random = 7;
    assert_int_equal(alink_handle(&fx.core, &ev), ALINK_OK);
}

static void simple(alink_event_type_t type)
{
    alink_event_t ev = {.type = type};
    feed(ev);
}

static size_t count(alink_action_type_t type, const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < fx.count; i++) {
        if (fx.actions[i].type == type && (!text || strcmp(fx.actions[i].text, text) == 0)) {
            n++;
        }
    }
    return n;
}

static const recorded_t *last(alink_action_type_t type, const char *text)
{
    for (size_t i = fx.count; i-- > 0;) {
        if (fx.actions[i].type == type && (!text || strcmp(fx.actions[i].text, text) == 0)) {
            return &fx.actions[i];
        }
    }
    return NULL;
}

static void init_with(const char *version)
{
    memset(&fx, 0, sizeof fx);
    alink_config_defaults(&fx.cfg);
    fx.cfg.product_key = "a1pk";
    fx.cfg.device_name = "dev1";
    fx.cfg.device_secret = SECRET;
    fx.cfg.firmware_version = version;
    fx.cfg.ota_slot_bytes = SLOT;
    fx.now = 1000;
    assert_int_equal(alink_init(&fx.core, &fx.cfg, record, NULL, NULL), ALINK_OK);
}

/* Network, clock, CONNACK and every SUBACK: online. */
static void go_online(void)
{
    simple(ALINK_EV_NET_UP);
    alink_event_t sync = {.type = ALINK_EV_TIME_SYNCED};
    sync.u.time_synced.unix_ms = 1700000000000ull;
    feed(sync);
    simple(ALINK_EV_MQTT_CONNECTED);
    for (unsigned i = 0; i < ALINK_SUBSCRIPTIONS; i++) {
        alink_event_t s = {.type = ALINK_EV_SUBACK};
        s.u.suback.index = i;
        s.u.suback.granted = true;
        feed(s);
    }
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_ONLINE);
}

static int setup_online(void **state)
{
    (void)state;
    init_with("1.0.0");
    go_online();
    fx.count = 0;
    return 0;
}

static void message(const char *payload)
{
    alink_event_t ev = {.type = ALINK_EV_MESSAGE};
    ev.u.message.topic = UPGRADE_TOPIC;
    ev.u.message.topic_len = strlen(UPGRADE_TOPIC);
    ev.u.message.payload = payload;
    ev.u.message.payload_len = strlen(payload);
    feed(ev);
}

static void push(const char *version, uint32_t size, const char *url, const char *method, const char *sign)
{
    char text[1400];
    snprintf(text, sizeof text,
             "{\"code\":\"1000\",\"data\":{\"size\":%u,\"sign\":\"%s\",\"signMethod\":\"%s\",\"md5\":\"\","
             "\"url\":\"%s\",\"version\":\"%s\",\"module\":\"default\",\"extData\":{}},\"id\":1,"
             "\"message\":\"success\"}",
             (unsigned)size, sign, method, url, version);
    message(text);
}

static void ota_event(alink_event_type_t type, uint32_t received, const char *digest, alink_ota_step_t step)
{
    alink_event_t ev = {.type = type};
    ev.u.ota.received_bytes = received;
    ev.u.ota.digest_hex = digest;
    ev.u.ota.step = step;
    feed(ev);
}

/* ---- the message, field by field ---- */

static alink_ota_verdict_t parse(const char *data_fields)
{
    char text[ALINK_OTA_MESSAGE_MAX + 200];
    alink_ota_upgrade_t job;
    snprintf(text, sizeof text, "{\"code\":\"1000\",\"data\":{%s},\"id\":1,\"message\":\"success\"}", data_fields);
    return alink_ota_parse_upgrade(text, strlen(text), &job);
}

#define GOOD_SIGN "\"sign\":\"" SHA "\",\"signMethod\":\"SHA256\""
#define GOOD_URL "\"url\":\"https://oss.example.com/fw.bin?Expires=1&Signature=x%2B\""

static void test_parse_accepts_a_well_formed_message(void **state)
{
    (void)state;
    alink_ota_upgrade_t job;
    const char *text = "{\"code\":\"1000\",\"data\":{\"size\":4096,\"sign\":\"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B8"
                       "22CD15D6C15B0F00A08\",\"signMethod\":\"SHA256\",\"md5\":\"x\",\"url\":\"HTTPS://h:8443/a.bin\","
                       "\"version\":\"2.0.0-rc.1\",\"module\":\"default\",\"extData\":{\"k\":[1]}},\"id\":5,"
                       "\"message\":\"success\"}";
    assert_int_equal(alink_ota_parse_upgrade(text, strlen(text), &job), ALINK_OTA_ACCEPTED);
    assert_int_equal(job.size, 4096);
    assert_int_equal(job.sign_method, ALINK_OTA_SIGN_SHA256);
    assert_string_equal(job.sign, SHA); /* lower-cased */
    assert_string_equal(job.url, "HTTPS://h:8443/a.bin");
    assert_string_equal(job.version, "2.0.0-rc.1");
    assert_int_equal(parse("\"size\":1,\"sign\":\"0123456789abcdef0123456789ABCDEF\",\"signMethod\":\"Md5\"," GOOD_URL
                           ",\"version\":\"2\""),
                     ALINK_OTA_ACCEPTED);
    /* module may be left out: the default module */
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"2\""), ALINK_OTA_ACCEPTED);
}

static void test_parse_refuses_each_bad_field(void **state)
{
    (void)state;
    alink_ota_upgrade_t job;
    const char *no_code = "{\"data\":{}}";
    const char *bad_code = "{\"code\":\"1001\",\"data\":{}}";
    const char *numeric_code = "{\"code\":1000,\"data\":{}}";
    const char *no_data = "{\"code\":\"1000\"}";
    const char *data_array = "{\"code\":\"1000\",\"data\":[]}";
    assert_int_equal(alink_ota_parse_upgrade(no_code, strlen(no_code), &job), ALINK_OTA_BAD_CODE);
    assert_int_equal(alink_ota_parse_upgrade(bad_code, strlen(bad_code), &job), ALINK_OTA_BAD_CODE);
    assert_int_equal(alink_ota_parse_upgrade(numeric_code, strlen(numeric_code), &job), ALINK_OTA_BAD_CODE);
    assert_int_equal(alink_ota_parse_upgrade(no_data, strlen(no_data), &job), ALINK_OTA_NO_DATA);
    assert_int_equal(alink_ota_parse_upgrade(data_array, strlen(data_array), &job), ALINK_OTA_NO_DATA);
    assert_int_equal(alink_ota_parse_upgrade("[1]", 3, &job), ALINK_OTA_NOT_JSON);
    assert_int_equal(alink_ota_parse_upgrade("{\"code\"", 7, &job), ALINK_OTA_NOT_JSON);
    assert_int_equal(alink_ota_parse_upgrade("{[[[[[[]]]]]]}", 14, &job), ALINK_OTA_NESTING);
    assert_int_equal(alink_ota_parse_upgrade("{}", ALINK_OTA_MESSAGE_MAX + 1u, &job), ALINK_OTA_TOO_LARGE);

    const char *rest = "," GOOD_SIGN "," GOOD_URL ",\"version\":\"2\"";
    static const char *const sizes[] = {"", "\"size\":0", "\"size\":-1", "\"size\":1.5", "\"size\":\"10\"",
                                        "\"size\":4294967296"};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char fields[600];
        snprintf(fields, sizeof fields, "%s%s", sizes[i], i == 0 ? rest + 1 : rest);
        assert_int_equal(parse(fields), ALINK_OTA_BAD_SIZE);
    }
    assert_int_equal(parse("\"size\":4294967295," GOOD_SIGN "," GOOD_URL ",\"version\":\"2\""), ALINK_OTA_ACCEPTED);

    assert_int_equal(parse("\"size\":1,\"sign\":\"" SHA "\"," GOOD_URL ",\"version\":\"2\""), ALINK_OTA_BAD_SIGN_METHOD);
    assert_int_equal(parse("\"size\":1,\"sign\":\"" SHA "\",\"signMethod\":\"sha256\"," GOOD_URL ",\"version\":\"2\""),
                     ALINK_OTA_BAD_SIGN_METHOD);
    assert_int_equal(parse("\"size\":1,\"sign\":\"" SHA "\",\"signMethod\":\"Md5\"," GOOD_URL ",\"version\":\"2\""),
                     ALINK_OTA_BAD_SIGN); /* 64 digits for an MD5 */
    assert_int_equal(parse("\"size\":1,\"signMethod\":\"SHA256\"," GOOD_URL ",\"version\":\"2\""), ALINK_OTA_BAD_SIGN);
    assert_int_equal(parse("\"size\":1,\"sign\":\"" "g" SHA "\",\"signMethod\":\"SHA256\"," GOOD_URL ",\"version\":\"2\""),
                     ALINK_OTA_BAD_SIGN);
    char non_hex[] = "\"size\":1,\"sign\":\"" SHA "\",\"signMethod\":\"SHA256\"," GOOD_URL ",\"version\":\"2\"";
    non_hex[strlen("\"size\":1,\"sign\":\"") + 3] = 'z';
    assert_int_equal(parse(non_hex), ALINK_OTA_BAD_SIGN);

    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"version\":\"2\""), ALINK_OTA_BAD_URL);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"https://a b/c\",\"version\":\"2\""), ALINK_OTA_BAD_URL);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"https://a/\\u0001\",\"version\":\"2\""), ALINK_OTA_BAD_URL);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"http://a/fw.bin\",\"version\":\"2\""), ALINK_OTA_NOT_HTTPS);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"ftp://a/fw.bin\",\"version\":\"2\""), ALINK_OTA_NOT_HTTPS);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"https://\",\"version\":\"2\""), ALINK_OTA_NOT_HTTPS);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN ",\"url\":\"https:///x\",\"version\":\"2\""), ALINK_OTA_NOT_HTTPS);
    char long_url[ALINK_OTA_MESSAGE_MAX];
    int n = snprintf(long_url, sizeof long_url, "\"size\":1," GOOD_SIGN ",\"url\":\"https://h/");
    memset(long_url + n, 'a', ALINK_OTA_URL_MAX);
    snprintf(long_url + n + ALINK_OTA_URL_MAX - 9, sizeof long_url - (size_t)n - ALINK_OTA_URL_MAX, "\",\"version\":\"2\"");
    assert_int_equal(parse(long_url), ALINK_OTA_BAD_URL); /* 1025 characters */

    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL), ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"\""), ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":2"), ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"a\\\"b\""), ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"a\\nb\""), ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL
                           ",\"version\":\"12345678901234567890123456789012345678901234567890123456789012345\""),
                     ALINK_OTA_BAD_VERSION);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"2\",\"module\":\"wifi\""),
                     ALINK_OTA_BAD_MODULE);
    assert_int_equal(parse("\"size\":1," GOOD_SIGN "," GOOD_URL ",\"version\":\"2\",\"module\":1"), ALINK_OTA_BAD_MODULE);
    assert_int_equal(alink_ota_parse_upgrade(NULL, 0, &job), ALINK_OTA_NOT_JSON);
    assert_string_equal(alink_ota_verdict_text(ALINK_OTA_NOT_HTTPS), "url is not https");
}

/* ---- the core ---- */

static void test_off_without_a_version(void **state)
{
    (void)state;
    init_with(NULL);
    go_online(); /* two SUBACKs suffice... */
    assert_int_equal(count(ALINK_ACT_SUBSCRIBE, UPGRADE_TOPIC), 0);
    assert_int_equal(count(ALINK_ACT_PUBLISH, INFORM_TOPIC), 0);
    assert_int_equal(count(ALINK_ACT_OTA_CONFIRM, NULL), 0);
    fx.count = 0;
    push("2.0.0", 10, "https://h/x", "SHA256", SHA);
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 0);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ignored message: unknown topic"));
}

static void test_bad_running_version_is_a_config_error(void **state)
{
    (void)state;
    alink_config_t cfg;
    alink_config_defaults(&cfg);
    cfg.product_key = "a1pk";
    cfg.device_name = "dev1";
    cfg.device_secret = SECRET;
    cfg.firmware_version = "1\"0";
    assert_int_equal(alink_init(&fx.core, &cfg, record, NULL, NULL), ALINK_ERR_CONFIG);
    cfg.firmware_version = "";
    assert_int_equal(alink_init(&fx.core, &cfg, record, NULL, NULL), ALINK_ERR_CONFIG);
}

static void test_online_subscribes_confirms_and_informs_after_every_connect(void **state)
{
    (void)state;
    init_with("1.0.0");
    simple(ALINK_EV_NET_UP);
    alink_event_t sync = {.type = ALINK_EV_TIME_SYNCED};
    sync.u.time_synced.unix_ms = 1700000000000ull;
    feed(sync);
    simple(ALINK_EV_MQTT_CONNECTED);
    const recorded_t *sub = last(ALINK_ACT_SUBSCRIBE, UPGRADE_TOPIC);
    assert_non_null(sub);
    assert_int_equal(sub->index, 2);
    for (unsigned i = 0; i < 2; i++) {
        alink_event_t s = {.type = ALINK_EV_SUBACK};
        s.u.suback.index = i;
        s.u.suback.granted = true;
        feed(s);
    }
    /* not online (and so not confirmed) before the OTA subscription too is answered */
    assert_int_equal(alink_state(&fx.core), ALINK_STATE_SUBSCRIBING);
    assert_int_equal(count(ALINK_ACT_OTA_CONFIRM, NULL), 0);
    alink_event_t s = {.type = ALINK_EV_SUBACK};
    s.u.suback.index = 2;
    s.u.suback.granted = true;
    feed(s);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: subscribed " UPGRADE_TOPIC));
    assert_int_equal(count(ALINK_ACT_OTA_CONFIRM, NULL), 1);
    const recorded_t *inform = last(ALINK_ACT_PUBLISH, INFORM_TOPIC);
    assert_non_null(inform);
    assert_non_null(strstr(inform->payload, "\"params\":{\"version\":\"1.0.0\",\"module\":\"default\"}"));
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota inform version=1.0.0"));

    simple(ALINK_EV_MQTT_DISCONNECTED);
    fx.now += 100000;
    alink_event_t tick = {.type = ALINK_EV_TICK};
    feed(tick);
    simple(ALINK_EV_MQTT_CONNECTED);
    for (unsigned i = 0; i < 3; i++) {
        alink_event_t again = {.type = ALINK_EV_SUBACK};
        again.u.suback.index = i;
        again.u.suback.granted = true;
        feed(again);
    }
    assert_int_equal(count(ALINK_ACT_PUBLISH, INFORM_TOPIC), 2); /* again after the reconnect */
    assert_int_equal(count(ALINK_ACT_OTA_CONFIRM, NULL), 1);     /* once per start */
}

static void test_accepted_push_begins_and_a_second_is_refused(void **state)
{
    (void)state;
    push("2.0.0", 4096, "https://h:8443/fw.bin", "SHA256", SHA);
    const recorded_t *begin = last(ALINK_ACT_OTA_BEGIN, NULL);
    assert_non_null(begin);
    assert_string_equal(begin->url, "https://h:8443/fw.bin");
    assert_string_equal(begin->text, "2.0.0");
    assert_int_equal(begin->size, 4096);
    assert_int_equal(begin->sign_method, ALINK_OTA_SIGN_SHA256);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota begin version=2.0.0 size=4096"));
    fx.count = 0;
    push("3.0.0", 4096, "https://h:8443/fw3.bin", "SHA256", SHA);
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 0);
    assert_int_equal(count(ALINK_ACT_PUBLISH, NULL), 0); /* the running update is not reported failed */
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota refused: an update is running"));
}

static void expect_refused(const char *log, const char *desc)
{
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 0);
    assert_non_null(last(ALINK_ACT_LOG, log));
    const recorded_t *post = last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC);
    assert_non_null(post);
    char expected[160];
    snprintf(expected, sizeof expected, "\"params\":{\"step\":\"-1\",\"desc\":\"%s\",\"module\":\"default\"}", desc);
    assert_non_null(strstr(post->payload, expected));
}

static void test_refusals_before_download(void **state)
{
    (void)state;
    push("2.0.0", SLOT + 1u, "https://h/fw.bin", "SHA256", SHA);
    expect_refused("aliyun: ota refused: image larger than the slot", "image larger than the slot");
    fx.count = 0;
    push("1.0.0", 10, "https://h/fw.bin", "SHA256", SHA);
    expect_refused("aliyun: ota refused: already running this version", "already running this version");
    fx.count = 0;
    push("2.0.0", 10, "http://h/fw.bin", "SHA256", SHA);
    expect_refused("aliyun: ota refused: url is not https", "url is not https");
    fx.count = 0;
    push("2.0.0", 10, "https://h/fw.bin", "SHA1", SHA);
    expect_refused("aliyun: ota refused: unknown signMethod", "unknown signMethod");
    fx.count = 0;
    message("not json");
    expect_refused("aliyun: ota refused: not JSON", "not JSON");
    fx.count = 0;
    /* a slot exactly the image's size is enough */
    push("2.0.0", SLOT, "https://h/fw.bin", "SHA256", SHA);
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 1);
}

static void test_progress_at_most_every_5_percent_and_1_s(void **state)
{
    (void)state;
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    /* 1 % every 100 ms: the 5 % rule alone would post at 5 %; the 1 s rule holds it to 10 %, 20 %, ... */
    for (uint32_t received = 10; received <= 900; received += 10) {
        fx.now += 100;
        ota_event(ALINK_EV_OTA_PROGRESS, received, NULL, 0);
    }
    assert_int_equal(count(ALINK_ACT_PUBLISH, PROGRESS_TOPIC), 9);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"90\""));
    fx.count = 0;
    /* a fast link: 1 s passes but less than 5 % more: nothing */
    fx.now += 5000;
    ota_event(ALINK_EV_OTA_PROGRESS, 940, NULL, 0);
    assert_int_equal(count(ALINK_ACT_PUBLISH, PROGRESS_TOPIC), 0);
}

static void test_progress_never_posts_100_before_verification(void **state)
{
    (void)state;
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.now += 2000;
    ota_event(ALINK_EV_OTA_PROGRESS, 1000, NULL, 0);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"99\""));
}

static void test_matching_digest_posts_100_and_finishes(void **state)
{
    (void)state;
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    char upper[65];
    for (size_t i = 0; i <= 64; i++) {
        upper[i] = (char)(SHA[i] >= 'a' && SHA[i] <= 'f' ? SHA[i] - 'a' + 'A' : SHA[i]);
    }
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, upper, 0);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"100\",\"desc\":\"verified\""));
    assert_int_equal(count(ALINK_ACT_OTA_FINISH, NULL), 1);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota verified: restarting into version=2.0.0"));
    /* still busy while the shell switches slots */
    push("3.0.0", 10, "https://h/fw.bin", "SHA256", SHA);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota refused: an update is running"));
    /* the switch failing: -1, and the next push may run */
    ota_event(ALINK_EV_OTA_FAILED, 0, NULL, ALINK_OTA_STEP_UPDATE_FAILED);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"-1\""));
    push("3.0.0", 10, "https://h/fw.bin", "SHA256", SHA);
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 1);
}

static void test_wrong_digest_or_size_is_step_minus_3(void **state)
{
    (void)state;
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    char wrong[] = SHA;
    wrong[0] = '0';
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, wrong, 0);
    assert_int_equal(count(ALINK_ACT_OTA_FINISH, NULL), 0);
    assert_int_equal(count(ALINK_ACT_OTA_ABORT, NULL), 1);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"-3\",\"desc\":\"sign mismatch\""));
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota failed: step -3: sign mismatch"));

    push("2.0.0", 1000, "https://h/fw.bin", "Md5", "0123456789abcdef0123456789abcdef");
    fx.count = 0;
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, SHA, 0); /* a digest of the wrong length */
    assert_int_equal(count(ALINK_ACT_OTA_ABORT, NULL), 1);
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    ota_event(ALINK_EV_OTA_DOWNLOADED, 999, SHA, 0);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"-3\",\"desc\":\"size mismatch\""));
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, NULL, 0);
    assert_int_equal(count(ALINK_ACT_OTA_ABORT, NULL), 1);
}

static void test_shell_failures_map_to_their_steps(void **state)
{
    (void)state;
    static const struct {
        alink_ota_step_t reported;
        const char *posted;
    } cases[] = {
        {ALINK_OTA_STEP_DOWNLOAD_FAILED, "\"step\":\"-2\",\"desc\":\"download failed\""},
        {ALINK_OTA_STEP_WRITE_FAILED, "\"step\":\"-4\",\"desc\":\"write failed\""},
        {ALINK_OTA_STEP_UPDATE_FAILED, "\"step\":\"-1\",\"desc\":\"cannot switch slots\""},
        {ALINK_OTA_STEP_VERIFY_FAILED, "\"step\":\"-1\""}, /* the core verifies: from the shell it is -1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
        fx.count = 0;
        ota_event(ALINK_EV_OTA_FAILED, 0, NULL, cases[i].reported);
        assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, cases[i].posted));
    }
    /* after a failure the next push runs */
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    assert_int_equal(count(ALINK_ACT_OTA_BEGIN, NULL), 1);
}

static void test_more_bytes_than_announced_is_a_download_failure(void **state)
{
    (void)state;
    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    fx.count = 0;
    ota_event(ALINK_EV_OTA_PROGRESS, 1001, NULL, 0);
    assert_int_equal(count(ALINK_ACT_OTA_ABORT, NULL), 1);
    assert_non_null(strstr(last(ALINK_ACT_PUBLISH, PROGRESS_TOPIC)->payload, "\"step\":\"-2\""));
}

static void test_stale_events_and_offline_progress(void **state)
{
    (void)state;
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, SHA, 0);
    ota_event(ALINK_EV_OTA_FAILED, 0, NULL, ALINK_OTA_STEP_WRITE_FAILED);
    ota_event(ALINK_EV_OTA_PROGRESS, 10, NULL, 0);
    assert_int_equal(fx.count, 0); /* nothing runs: nothing to say */

    push("2.0.0", 1000, "https://h/fw.bin", "SHA256", SHA);
    simple(ALINK_EV_MQTT_DISCONNECTED); /* the download goes on without MQTT */
    fx.count = 0;
    fx.now += 2000;
    ota_event(ALINK_EV_OTA_PROGRESS, 500, NULL, 0);
    assert_int_equal(count(ALINK_ACT_PUBLISH, NULL), 0);
    assert_non_null(last(ALINK_ACT_LOG, "aliyun: ota progress 50%"));
    ota_event(ALINK_EV_OTA_DOWNLOADED, 1000, SHA, 0);
    assert_int_equal(count(ALINK_ACT_OTA_FINISH, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_a_well_formed_message),
        cmocka_unit_test(test_parse_refuses_each_bad_field),
        cmocka_unit_test(test_off_without_a_version),
        cmocka_unit_test(test_bad_running_version_is_a_config_error),
        cmocka_unit_test(test_online_subscribes_confirms_and_informs_after_every_connect),
        cmocka_unit_test_setup(test_accepted_push_begins_and_a_second_is_refused, setup_online),
        cmocka_unit_test_setup(test_refusals_before_download, setup_online),
        cmocka_unit_test_setup(test_progress_at_most_every_5_percent_and_1_s, setup_online),
        cmocka_unit_test_setup(test_progress_never_posts_100_before_verification, setup_online),
        cmocka_unit_test_setup(test_matching_digest_posts_100_and_finishes, setup_online),
        cmocka_unit_test_setup(test_wrong_digest_or_size_is_step_minus_3, setup_online),
        cmocka_unit_test_setup(test_shell_failures_map_to_their_steps, setup_online),
        cmocka_unit_test_setup(test_more_bytes_than_announced_is_a_download_failure, setup_online),
        cmocka_unit_test_setup(test_stale_events_and_offline_progress, setup_online),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
