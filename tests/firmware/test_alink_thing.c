/* The thing-model engine over a hand-written table with every TSL data type: each range edge and
 * one past it, type confusion, access, all-or-nothing sets, posts, events and services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alink_thing.h"

typedef struct {
    int32_t x;
    char tag[5];
} point_t;

typedef struct {
    int32_t i;
    float f;
    double d;
    bool b;
    int32_t e;
    char t[9];
    uint64_t when;
    point_t p;
    uint32_t arr_count;
    double arr[3];
    int32_t ro;
} props_t;

static const int32_t modes[] = {0, 2, 7};
static const alink_thing_field_t point_members[] = {
    {.identifier = "x", .type = ALINK_THING_INT, .min = -5, .max = 5, .offset = offsetof(point_t, x),
     .size = sizeof(int32_t)},
    {.identifier = "tag", .type = ALINK_THING_TEXT, .length = 4, .offset = offsetof(point_t, tag), .size = 5},
};
static const alink_thing_field_t arr_item[] = {
    {.identifier = "", .type = ALINK_THING_DOUBLE, .min = 0, .max = 1, .size = sizeof(double)},
};
#define RW ALINK_THING_RW
static const alink_thing_field_t fields[] = {
    {.identifier = "I", .type = ALINK_THING_INT, .access = RW, .min = -100, .max = 100, .step = 5,
     .offset = offsetof(props_t, i), .size = sizeof(int32_t)},
    {.identifier = "F", .type = ALINK_THING_FLOAT, .access = RW, .min = -40, .max = 120, .step = 0.1,
     .offset = offsetof(props_t, f), .size = sizeof(float)},
    {.identifier = "D", .type = ALINK_THING_DOUBLE, .access = RW, .min = -1e9, .max = 1e9,
     .offset = offsetof(props_t, d), .size = sizeof(double)},
    {.identifier = "B", .type = ALINK_THING_BOOL, .access = RW, .offset = offsetof(props_t, b), .size = sizeof(bool)},
    {.identifier = "E", .type = ALINK_THING_ENUM, .access = RW, .enum_values = modes, .enum_count = 3,
     .offset = offsetof(props_t, e), .size = sizeof(int32_t)},
    {.identifier = "T", .type = ALINK_THING_TEXT, .access = RW, .length = 8, .offset = offsetof(props_t, t),
     .size = 9},
    {.identifier = "W", .type = ALINK_THING_DATE, .access = RW, .offset = offsetof(props_t, when),
     .size = sizeof(uint64_t)},
    {.identifier = "P", .type = ALINK_THING_STRUCT, .access = RW, .members = point_members, .member_count = 2,
     .offset = offsetof(props_t, p), .size = sizeof(point_t)},
    {.identifier = "A", .type = ALINK_THING_ARRAY, .access = RW, .members = arr_item, .member_count = 1,
     .array_size = 3, .offset = offsetof(props_t, arr_count),
     .size = offsetof(props_t, arr) + sizeof(double[3]) - offsetof(props_t, arr_count),
     .items_offset = offsetof(props_t, arr), .item_stride = sizeof(double)},
    {.identifier = "R", .type = ALINK_THING_INT, .access = ALINK_THING_R, .min = 0, .max = 10,
     .offset = offsetof(props_t, ro), .size = sizeof(int32_t)},
};

typedef struct {
    int32_t times;
    int32_t interval_ms;
} blink_in_t;
typedef struct {
    int32_t done;
} blink_out_t;
static const alink_thing_field_t blink_inputs[] = {
    {.identifier = "times", .type = ALINK_THING_INT, .min = 1, .max = 10, .offset = offsetof(blink_in_t, times),
     .size = sizeof(int32_t)},
    {.identifier = "interval_ms", .type = ALINK_THING_INT, .min = 50, .max = 5000,
     .offset = offsetof(blink_in_t, interval_ms), .size = sizeof(int32_t)},
};
static const alink_thing_field_t blink_outputs[] = {
    {.identifier = "done", .type = ALINK_THING_INT, .min = 0, .max = 10, .offset = 0, .size = sizeof(int32_t)},
};
static int blink_run(const void *input, void *output)
{
    const blink_in_t *in = input;
    blink_out_t *out = output;
    out->done = in->times;
    return in->times == 7 ? 500 : 200; /* 7: the application's own failure, passed through */
}
static const alink_thing_service_t services[] = {
    {.identifier = "Blink", .sync = false, .inputs = blink_inputs, .input_count = 2, .input_size = sizeof(blink_in_t),
     .outputs = blink_outputs, .output_count = 1, .output_size = sizeof(blink_out_t), .run = blink_run},
};
typedef struct {
    float value;
} alarm_t;
static const alink_thing_field_t alarm_outputs[] = {
    {.identifier = "Value", .type = ALINK_THING_FLOAT, .min = -40, .max = 120, .offset = 0, .size = sizeof(float)},
};
static const alink_thing_event_t events[] = {{.identifier = "TemperatureAlarm", .outputs = alarm_outputs,
                                              .output_count = 1}};

static const alink_thing_model_t model = {fields, 10, sizeof(props_t), events, 1, services, 1};

static props_t live;
static props_t staging;
static alink_thing_result_t res;

static int reset(void **state)
{
    (void)state;
    memset(&live, 0, sizeof live);
    memset(&res, 0, sizeof res);
    return 0;
}

/* Sets params (a JSON object's inside) and returns the reply code. */
static int set(const char *params)
{
    char payload[512];
    int n = snprintf(payload, sizeof payload, "{\"id\":\"5\",\"version\":\"1.0\",\"params\":{%s}}", params);
    assert_true(n > 0 && (size_t)n < sizeof payload);
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, payload, (size_t)n, &res), ALINK_OK);
    assert_string_equal(res.id, "5");
    return res.code;
}

static void test_table_is_consistent(void **state)
{
    (void)state;
    assert_int_equal(alink_thing_model_check(&model), ALINK_OK);
    alink_thing_field_t bad[1] = {fields[0]};
    bad[0].offset = sizeof(props_t);
    alink_thing_model_t broken = {bad, 1, sizeof(props_t), NULL, 0, NULL, 0};
    assert_int_equal(alink_thing_model_check(&broken), ALINK_ERR_CONFIG);
}

static void test_int_edges_and_step(void **state)
{
    (void)state;
    assert_int_equal(set("\"I\":-100"), 200);
    assert_int_equal(live.i, -100);
    assert_int_equal(set("\"I\":100"), 200);
    assert_int_equal(live.i, 100);
    assert_int_equal(set("\"I\":-105"), 460);
    assert_string_equal(res.message, "bad value: I");
    assert_int_equal(set("\"I\":101"), 460);
    assert_int_equal(set("\"I\":3"), 460); /* off the step-5 grid from -100 */
    assert_int_equal(set("\"I\":2.5"), 460);
    assert_int_equal(set("\"I\":\"5\""), 460);
    assert_int_equal(set("\"I\":1e400"), 460);
    assert_int_equal(live.i, 100);
}

static void test_float_edges_and_step(void **state)
{
    (void)state;
    assert_int_equal(set("\"F\":-40"), 200);
    assert_true(live.f == -40.0f);
    assert_int_equal(set("\"F\":120"), 200);
    assert_int_equal(set("\"F\":23.3"), 200);
    assert_true(live.f == 23.3f);
    assert_int_equal(set("\"F\":-40.01"), 460);
    assert_int_equal(set("\"F\":120.1"), 460);
    assert_int_equal(set("\"F\":23.35"), 460);
    assert_int_equal(set("\"F\":true"), 460);
    assert_int_equal(set("\"D\":-1e9"), 200);
    assert_int_equal(set("\"D\":1e9"), 200);
    assert_int_equal(set("\"D\":1000000000.001"), 460);
    assert_int_equal(set("\"D\":null"), 460);
}

static void test_bool_enum_text_date(void **state)
{
    (void)state;
    assert_int_equal(set("\"B\":1"), 200);
    assert_true(live.b);
    assert_int_equal(set("\"B\":0"), 200);
    assert_int_equal(set("\"B\":2"), 460);
    assert_int_equal(set("\"B\":true"), 460); /* TSL bool is the integer 0 or 1 */
    assert_int_equal(set("\"E\":7"), 200);
    assert_int_equal(live.e, 7);
    assert_int_equal(set("\"E\":1"), 460);
    assert_int_equal(set("\"E\":7.5"), 460);
    assert_int_equal(set("\"T\":\"12345678\""), 200);
    assert_string_equal(live.t, "12345678");
    assert_int_equal(set("\"T\":\"\""), 200);
    assert_string_equal(live.t, "");
    assert_int_equal(set("\"T\":\"123456789\""), 460);
    assert_int_equal(set("\"T\":5"), 460);
    assert_int_equal(set("\"W\":\"9999999999999\""), 200);
    assert_true(live.when == UINT64_C(9999999999999));
    assert_int_equal(set("\"W\":\"0\""), 200);
    assert_int_equal(set("\"W\":\"10000000000000\""), 460);
    assert_int_equal(set("\"W\":\"\""), 460);
    assert_int_equal(set("\"W\":\"12a\""), 460);
    assert_int_equal(set("\"W\":1700000000000"), 460);
}

static void test_struct_and_array(void **state)
{
    (void)state;
    assert_int_equal(set("\"P\":{\"x\":-5,\"tag\":\"abcd\"}"), 200);
    assert_int_equal(live.p.x, -5);
    assert_string_equal(live.p.tag, "abcd");
    assert_int_equal(set("\"P\":{\"x\":6,\"tag\":\"a\"}"), 460);
    assert_string_equal(res.message, "bad value: P");
    assert_int_equal(set("\"P\":{\"x\":1}"), 460);
    assert_int_equal(set("\"P\":{\"x\":1,\"tag\":\"a\",\"y\":1}"), 460);
    assert_int_equal(set("\"P\":{\"x\":1,\"x\":2}"), 460);
    assert_int_equal(set("\"A\":[0,0.5,1]"), 200);
    assert_int_equal(live.arr_count, 3);
    assert_true(live.arr[1] == 0.5);
    assert_int_equal(set("\"A\":[]"), 200);
    assert_int_equal(live.arr_count, 0);
    assert_int_equal(set("\"A\":[0,0,0,0]"), 460);
    assert_int_equal(set("\"A\":[1.5]"), 460);
    assert_int_equal(set("\"A\":{}"), 460);
}

static void test_access_unknown_and_all_or_nothing(void **state)
{
    (void)state;
    assert_int_equal(set("\"R\":1"), 460);
    assert_string_equal(res.message, "read-only: R");
    assert_int_equal(set("\"Nope\":1"), 460);
    assert_string_equal(res.message, "unknown property");
    assert_int_equal(set("\"I\":50,\"B\":1,\"E\":3"), 460);
    assert_int_equal(live.i, 0);
    assert_false(live.b);
    assert_int_equal(set("\"I\":50,\"B\":1,\"E\":2"), 200);
    assert_int_equal(live.i, 50);
    assert_true(res.changed == ((UINT64_C(1) << 0) | (UINT64_C(1) << 3) | (UINT64_C(1) << 4)));
    assert_int_equal(set("\"I\":50"), 200);
    assert_true(res.changed == 0); /* the same value again: nothing to post back */
    assert_int_equal(set(""), 200);
}

static void test_request_shape(void **state)
{
    (void)state;
    const char *no_id = "{\"params\":{\"I\":5}}";
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, no_id, strlen(no_id), &res), ALINK_ERR_NO_ID);
    const char *bad_id = "{\"id\":\"5x\",\"params\":{}}";
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, bad_id, strlen(bad_id), &res),
                     ALINK_ERR_BAD_ID);
    const char *no_params = "{\"id\":\"9\"}";
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, no_params, strlen(no_params), &res), ALINK_OK);
    assert_int_equal(res.code, 460);
    const char *deep = "{\"id\":\"1\",\"params\":{\"A\":[[[[[[1]]]]]]}}";
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, deep, strlen(deep), &res), ALINK_ERR_NESTING);
    assert_int_equal(alink_thing_property_set(&model, &live, &staging, "{", 1, &res), ALINK_ERR_NOT_JSON);
}

static void test_post_and_event(void **state)
{
    (void)state;
    assert_int_equal(set("\"F\":23.3,\"T\":\"a\\\"b\\\\\",\"A\":[0.25],\"P\":{\"x\":2,\"tag\":\"q\"}"), 200);
    char out[512];
    size_t len = 0;
    uint64_t mask = (UINT64_C(1) << 1) | (UINT64_C(1) << 5) | (UINT64_C(1) << 7) | (UINT64_C(1) << 8);
    assert_int_equal(alink_thing_property_post(&model, &live, mask, 7, 0, out, sizeof out, &len), ALINK_OK);
    assert_string_equal(out, "{\"id\":\"7\",\"version\":\"1.0\",\"params\":{\"F\":23.3,\"T\":\"a\\\"b\\\\\","
                             "\"P\":{\"x\":2,\"tag\":\"q\"},\"A\":[0.25]},\"method\":\"thing.event.property.post\"}");
    assert_int_equal(len, strlen(out));
    assert_int_equal(alink_thing_property_post(&model, &live, UINT64_C(1) << 3, 8, 1700000000123u, out, sizeof out,
                                               NULL),
                     ALINK_OK);
    assert_string_equal(out, "{\"id\":\"8\",\"version\":\"1.0\",\"params\":{\"B\":{\"value\":0,\"time\":1700000000123}},"
                             "\"method\":\"thing.event.property.post\"}");
    assert_int_equal(alink_thing_property_post(&model, &live, mask, 7, 0, out, len, NULL), ALINK_ERR_BUFFER);
    assert_string_equal(out, "");
    alarm_t alarm = {85.5f};
    assert_int_equal(alink_thing_event_post(&model, 0, &alarm, 9, 1700000000000u, out, sizeof out, NULL), ALINK_OK);
    assert_string_equal(out, "{\"id\":\"9\",\"version\":\"1.0\",\"params\":{\"value\":{\"Value\":85.5},"
                             "\"time\":1700000000000},\"method\":\"thing.event.TemperatureAlarm.post\"}");
    assert_int_equal(alink_thing_event_post(&model, 1, &alarm, 9, 0, out, sizeof out, NULL), ALINK_ERR_ARG);
}

static void test_service(void **state)
{
    (void)state;
    blink_in_t in;
    blink_out_t out;
    char reply[256];
    assert_int_equal(alink_thing_service_index(&model, "Blink", 5), 0);
    assert_int_equal(alink_thing_service_index(&model, "Blinker", 7), -1);
    const char *ok = "{\"id\":\"3\",\"params\":{\"times\":3,\"interval_ms\":50}}";
    assert_int_equal(alink_thing_service_call(&model, 0, ok, strlen(ok), &in, &out, &res), ALINK_OK);
    assert_int_equal(res.code, 200);
    assert_int_equal(alink_thing_reply(&res, blink_outputs, 1, &out, reply, sizeof reply, NULL), ALINK_OK);
    assert_string_equal(reply, "{\"id\":\"3\",\"code\":200,\"data\":{\"done\":3},\"message\":\"success\",\"version\":\"1.0\"}");
    const char *missing = "{\"id\":\"3\",\"params\":{\"times\":3}}";
    assert_int_equal(alink_thing_service_call(&model, 0, missing, strlen(missing), &in, &out, &res), ALINK_OK);
    assert_int_equal(res.code, 460);
    assert_string_equal(res.message, "missing: interval_ms");
    const char *range = "{\"id\":\"3\",\"params\":{\"times\":11,\"interval_ms\":50}}";
    assert_int_equal(alink_thing_service_call(&model, 0, range, strlen(range), &in, &out, &res), ALINK_OK);
    assert_string_equal(res.message, "bad value: times");
    assert_int_equal(alink_thing_reply(&res, blink_outputs, 1, &out, reply, sizeof reply, NULL), ALINK_OK);
    assert_string_equal(reply, "{\"id\":\"3\",\"code\":460,\"data\":{},\"message\":\"bad value: times\",\"version\":\"1.0\"}");
    const char *fails = "{\"id\":\"3\",\"params\":{\"times\":7,\"interval_ms\":50}}";
    assert_int_equal(alink_thing_service_call(&model, 0, fails, strlen(fails), &in, &out, &res), ALINK_OK);
    assert_int_equal(res.code, 500);
    const char *extra = "{\"id\":\"3\",\"params\":{\"times\":1,\"interval_ms\":50,\"x\":1}}";
    assert_int_equal(alink_thing_service_call(&model, 0, extra, strlen(extra), &in, &out, &res), ALINK_OK);
    assert_string_equal(res.message, "unknown parameter");
}

static alink_status_t parse(const char *identifier, const char *json)
{
    int index = alink_thing_property_index(&model, identifier);
    assert_true(index >= 0);
    return alink_thing_value_parse(&fields[index], json, strlen(json), &live);
}

static void test_value_parse_checks_like_a_set(void **state)
{
    (void)state;
    assert_int_equal(parse("F", "21.5"), ALINK_OK);
    assert_true(live.f == 21.5f);
    assert_int_equal(parse("F", " 120 \n"), ALINK_OK);
    assert_int_equal(parse("F", "120.1"), ALINK_ERR_BAD_VALUE);
    assert_int_equal(parse("F", "21.55"), ALINK_ERR_BAD_VALUE); /* off the 0.1 grid */
    assert_int_equal(parse("F", "\"21.5\""), ALINK_ERR_BAD_VALUE);
    assert_int_equal(parse("F", "21.5x"), ALINK_ERR_NOT_JSON);
    assert_int_equal(parse("F", ""), ALINK_ERR_NOT_JSON);
    assert_int_equal(parse("R", "10"), ALINK_OK); /* read-only: a reading the shell sets, not a set */
    assert_int_equal(live.ro, 10);
    assert_int_equal(parse("P", "{\"x\":-5,\"tag\":\"abcd\"}"), ALINK_OK);
    assert_string_equal(live.p.tag, "abcd");
    assert_int_equal(parse("P", "{\"x\":-5}"), ALINK_ERR_BAD_VALUE);
    assert_int_equal(parse("A", "[0, 0.5, 1]"), ALINK_OK);
    assert_int_equal(live.arr_count, 3);
    assert_int_equal(alink_thing_value_parse(NULL, "1", 1, &live), ALINK_ERR_ARG);
}

static void test_values_json_of_a_mask(void **state)
{
    (void)state;
    char out[256];
    size_t len = 0;
    live.i = -100;
    live.b = true;
    strcpy(live.t, "a\"b");
    uint64_t mask = (UINT64_C(1) << 0) | (UINT64_C(1) << 3) | (UINT64_C(1) << 5);
    assert_int_equal(alink_thing_values_json(fields, 10, mask, &live, out, sizeof out, &len), ALINK_OK);
    assert_string_equal(out, "{\"I\":-100,\"B\":1,\"T\":\"a\\\"b\"}");
    assert_int_equal(len, strlen(out));
    assert_int_equal(alink_thing_values_json(fields, 0, 0, NULL, out, sizeof out, &len), ALINK_OK);
    assert_string_equal(out, "{}");
    assert_int_equal(alink_thing_values_json(fields, 10, mask, &live, out, 12, &len), ALINK_ERR_BUFFER);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_table_is_consistent, reset),
        cmocka_unit_test_setup(test_int_edges_and_step, reset),
        cmocka_unit_test_setup(test_float_edges_and_step, reset),
        cmocka_unit_test_setup(test_bool_enum_text_date, reset),
        cmocka_unit_test_setup(test_struct_and_array, reset),
        cmocka_unit_test_setup(test_access_unknown_and_all_or_nothing, reset),
        cmocka_unit_test_setup(test_request_shape, reset),
        cmocka_unit_test_setup(test_post_and_event, reset),
        cmocka_unit_test_setup(test_service, reset),
        cmocka_unit_test_setup(test_value_parse_checks_like_a_set, reset),
        cmocka_unit_test_setup(test_values_json_of_a_mask, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
