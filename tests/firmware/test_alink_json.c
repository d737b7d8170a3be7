/* Alink JSON: outbound payloads and their buffer edges; malformed and hostile inbound commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alink_json.h"

#define S(lit) lit, strlen(lit)

static void test_property_post(void **state)
{
    (void)state;
    char out[ALINK_PAYLOAD_SIZE];
    size_t len = 0;
    alink_properties_t p = {true, -67, 123456};
    assert_int_equal(alink_json_property_post(42, &p, out, sizeof out, &len), ALINK_OK);
    assert_string_equal(out, "{\"id\":\"42\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":1,\"RSSI\":-67,"
                             "\"FreeHeap\":123456},\"method\":\"thing.event.property.post\"}");
    assert_int_equal(len, strlen(out));
    memset(out, '#', sizeof out);
    assert_int_equal(alink_json_property_post(42, &p, out, len, NULL), ALINK_ERR_BUFFER);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[len], '#');
    assert_int_equal(alink_json_property_post(42, &p, out, len + 1, NULL), ALINK_OK);
    p.light_switch = false;
    assert_int_equal(alink_json_property_post(UINT32_MAX, &p, out, sizeof out, NULL), ALINK_OK);
    assert_non_null(strstr(out, "\"id\":\"4294967295\""));
    assert_non_null(strstr(out, "\"LightSwitch\":0"));
}

static void test_reply(void **state)
{
    (void)state;
    char out[ALINK_PAYLOAD_SIZE];
    size_t len = 0;
    assert_int_equal(alink_json_reply("8", ALINK_CODE_OK, out, sizeof out, &len), ALINK_OK);
    assert_string_equal(out, "{\"id\":\"8\",\"code\":200,\"data\":{},\"message\":\"success\",\"version\":\"1.0\"}");
    assert_int_equal(alink_json_reply("8", ALINK_CODE_BAD_PARAMS, out, sizeof out, &len), ALINK_OK);
    assert_non_null(strstr(out, "\"code\":460"));
    assert_int_equal(alink_json_reply("8\",\"code\":200", ALINK_CODE_OK, out, sizeof out, &len), ALINK_ERR_BAD_ID);
    assert_int_equal(alink_json_reply("", ALINK_CODE_OK, out, sizeof out, &len), ALINK_ERR_BAD_ID);
    assert_int_equal(alink_json_reply("8", ALINK_CODE_OK, out, 10, &len), ALINK_ERR_BUFFER);
}

static void test_property_set_good(void **state)
{
    (void)state;
    alink_property_set_t set;
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"123\",\"version\":\"1.0\",\"params\":{\"LightSwitch\":1},"
                                                      "\"method\":\"thing.service.property.set\"}"),
                                                   &set),
                     ALINK_OK);
    assert_string_equal(set.id, "123");
    assert_true(set.has_light_switch);
    assert_true(set.light_switch);
    assert_int_equal(alink_json_parse_property_set(S("{\"params\":{\"LightSwitch\":0},\"id\":\"4294967295\"}"), &set),
                     ALINK_OK);
    assert_false(set.light_switch);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\",\"params\":{\"Other\":5}}"), &set), ALINK_OK);
    assert_false(set.has_light_switch);
}

static void test_property_set_not_nul_terminated(void **state)
{
    (void)state;
    alink_property_set_t set;
    const char buf[] = "{\"id\":\"5\",\"params\":{\"LightSwitch\":1}}GARBAGE";
    assert_int_equal(alink_json_parse_property_set(buf, strlen(buf) - 7, &set), ALINK_OK);
    assert_int_equal(alink_json_parse_property_set(buf, strlen(buf) - 8, &set), ALINK_ERR_NOT_JSON);
}

static void test_property_set_malformed(void **state)
{
    (void)state;
    alink_property_set_t set;
    assert_int_equal(alink_json_parse_property_set(S(""), &set), ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("not json"), &set), ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("[1,2]"), &set), ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("\"str\""), &set), ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\""), &set), ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("{\"params\":{}}"), &set), ALINK_ERR_NO_ID);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":1,\"params\":{}}"), &set), ALINK_ERR_BAD_ID);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"12345678901\",\"params\":{}}"), &set),
                     ALINK_ERR_BAD_ID);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1a\",\"params\":{}}"), &set), ALINK_ERR_BAD_ID);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"\",\"params\":{}}"), &set), ALINK_ERR_BAD_ID);
    assert_string_equal(set.id, "");
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"9\"}"), &set), ALINK_ERR_NO_PARAMS);
    assert_string_equal(set.id, "9"); /* a 460 reply can still be addressed */
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"9\",\"params\":[1]}"), &set), ALINK_ERR_NO_PARAMS);
    const char *bad_values[] = {"2", "-1", "0.5", "\"1\"", "true", "null", "{}", "1e400"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        char payload[128];
        int n = snprintf(payload, sizeof payload, "{\"id\":\"3\",\"params\":{\"LightSwitch\":%s}}", bad_values[i]);
        assert_int_equal(alink_json_parse_property_set(payload, (size_t)n, &set), ALINK_ERR_BAD_VALUE);
        assert_string_equal(set.id, "3");
    }
    assert_int_equal(alink_json_parse_property_set(NULL, 3, &set), ALINK_ERR_ARG);
    assert_int_equal(alink_json_parse_property_set(S("{}"), NULL), ALINK_ERR_ARG);
}

static void test_hostile_sizes_and_nesting(void **state)
{
    (void)state;
    alink_property_set_t set;
    static char big[ALINK_INBOUND_MAX + 2];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"id\":\"1\",\"params\":{}}", 22);
    assert_int_equal(alink_json_parse_property_set(big, ALINK_INBOUND_MAX, &set), ALINK_OK); /* at the limit */
    assert_int_equal(alink_json_parse_property_set(big, ALINK_INBOUND_MAX + 1, &set), ALINK_ERR_TOO_LARGE);

    static char deep[ALINK_INBOUND_MAX];
    memset(deep, '[', sizeof deep); /* would be 1024 levels of recursion inside cJSON */
    assert_int_equal(alink_json_parse_property_set(deep, sizeof deep, &set), ALINK_ERR_NESTING);
    /* depth 4 is the limit, 5 is refused */
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\",\"params\":{\"a\":{\"b\":[1]}}}"), &set), ALINK_OK);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\",\"params\":{\"a\":{\"b\":{\"c\":[1]}}}}"), &set),
                     ALINK_ERR_NESTING);
    /* brackets inside strings, escaped quotes included, are not nesting */
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\",\"x\":\"[[[[\\\"{{{{{\",\"params\":{}}"), &set),
                     ALINK_OK);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\",\"params\":{\"LightSwitch\":1}}}}}]]]"), &set),
                     ALINK_ERR_NOT_JSON);
    assert_int_equal(alink_json_parse_property_set(S("{\"id\":\"1\\u0000\",\"params\":{}}"), &set), ALINK_OK);
    assert_string_equal(set.id, "1"); /* cJSON stops the string at the NUL; the id stays digits */
}

static void test_setled(void **state)
{
    (void)state;
    alink_setled_t cmd;
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":\"dev1\",\"s\":1}"), &cmd), ALINK_OK);
    assert_string_equal(cmd.device_name, "dev1");
    assert_true(cmd.on);
    assert_int_equal(alink_json_parse_setled(S("{\"s\":0,\"dn\":\"other\"}"), &cmd), ALINK_OK);
    assert_false(cmd.on);
    assert_int_equal(alink_json_parse_setled(S("{\"s\":1}"), &cmd), ALINK_ERR_NO_DN);
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":5,\"s\":1}"), &cmd), ALINK_ERR_NO_DN);
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":\"dev1\"}"), &cmd), ALINK_ERR_BAD_SWITCH);
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":\"dev1\",\"s\":\"1\"}"), &cmd), ALINK_ERR_BAD_SWITCH);
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":\"dev1\",\"s\":3}"), &cmd), ALINK_ERR_BAD_SWITCH);
    assert_int_equal(alink_json_parse_setled(S("{\"dn\":\"dev1\",\"s\":1"), &cmd), ALINK_ERR_NOT_JSON);
    char payload[200];
    char name[80];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    int n = snprintf(payload, sizeof payload, "{\"dn\":\"%s\",\"s\":1}", name);
    assert_int_equal(alink_json_parse_setled(payload, (size_t)n, &cmd), ALINK_ERR_NO_DN);
    assert_int_equal(cmd.device_name[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property_post),
        cmocka_unit_test(test_reply),
        cmocka_unit_test(test_property_set_good),
        cmocka_unit_test(test_property_set_not_nul_terminated),
        cmocka_unit_test(test_property_set_malformed),
        cmocka_unit_test(test_hostile_sizes_and_nesting),
        cmocka_unit_test(test_setled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
