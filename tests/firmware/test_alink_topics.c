/* Topic names and MQTT 3.1.1 topic-filter matching (section 4.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alink_topics.h"

static bool matches(const char *filter, const char *topic)
{
    return alink_topic_matches(filter, topic, strlen(topic));
}

static void test_thing_model_topics(void **state)
{
    (void)state;
    char t[ALINK_TOPIC_SIZE];
    assert_int_equal(alink_topic_build(ALINK_TOPIC_PROPERTY_POST, "a1pk", "dev1", t, sizeof t), ALINK_OK);
    assert_string_equal(t, "/sys/a1pk/dev1/thing/event/property/post");
    assert_int_equal(alink_topic_build(ALINK_TOPIC_PROPERTY_POST_REPLY, "a1pk", "dev1", t, sizeof t), ALINK_OK);
    assert_string_equal(t, "/sys/a1pk/dev1/thing/event/property/post_reply");
    assert_int_equal(alink_topic_build(ALINK_TOPIC_PROPERTY_SET, "a1pk", "dev1", t, sizeof t), ALINK_OK);
    assert_string_equal(t, "/sys/a1pk/dev1/thing/service/property/set");
    assert_int_equal(alink_topic_build(ALINK_TOPIC_PROPERTY_SET_REPLY, "a1pk", "dev1", t, sizeof t), ALINK_OK);
    assert_string_equal(t, "/sys/a1pk/dev1/thing/service/property/set_reply");
    assert_int_equal(alink_topic_build(ALINK_TOPIC_USER_SETLED, "a1pk", "dev1", t, sizeof t), ALINK_OK);
    assert_string_equal(t, "/a1pk/dev1/user/setled");
}

static void test_build_buffer_edges(void **state)
{
    (void)state;
    const char *expected = "/a1pk/dev1/user/setled";
    char t[32];
    size_t exact = strlen(expected) + 1;
    assert_int_equal(alink_topic_build(ALINK_TOPIC_USER_SETLED, "a1pk", "dev1", t, exact), ALINK_OK);
    assert_string_equal(t, expected);
    memset(t, 'x', sizeof t);
    assert_int_equal(alink_topic_build(ALINK_TOPIC_USER_SETLED, "a1pk", "dev1", t, exact - 1), ALINK_ERR_BUFFER);
    assert_int_equal(t[0], '\0');
    assert_int_equal(t[exact - 1], 'x'); /* nothing past the stated size */
    assert_int_equal(alink_topic_build(ALINK_TOPIC_COUNT, "a1pk", "dev1", t, sizeof t), ALINK_ERR_ARG);
    assert_int_equal(alink_topic_build(ALINK_TOPIC_USER_SETLED, NULL, "dev1", t, sizeof t), ALINK_ERR_ARG);
    assert_int_equal(alink_topic_build(ALINK_TOPIC_USER_SETLED, "a", "dev1", t, 0), ALINK_ERR_ARG);
}

static void test_exact_and_level_wildcards(void **state)
{
    (void)state;
    assert_true(matches("/a1pk/dev1/user/setled", "/a1pk/dev1/user/setled"));
    assert_false(matches("/a1pk/dev1/user/setled", "/a1pk/dev1/user/setle"));
    assert_false(matches("/a1pk/dev1/user/setled", "/a1pk/dev1/user/setled/x"));
    assert_false(matches("/a1pk/dev1/user/setled", "/a1pk/dev2/user/setled"));
    assert_true(matches("/sys/+/+/thing/service/property/set", "/sys/pk/dn/thing/service/property/set"));
    assert_false(matches("/sys/+/thing", "/sys/pk/dn/thing"));
    assert_true(matches("sport/+", "sport/"));
    assert_false(matches("+", "/finance"));
    assert_true(matches("+/+", "/finance"));
    assert_true(matches("/+", "/finance"));
    assert_false(matches("sport+", "sport1")); /* "+" must fill a whole level */
}

static void test_multi_level_wildcard(void **state)
{
    (void)state;
    assert_true(matches("sport/tennis/#", "sport/tennis/player1/ranking"));
    assert_true(matches("sport/tennis/#", "sport/tennis"));
    assert_true(matches("sport/#", "sport"));
    assert_true(matches("#", "anything/at/all"));
    assert_false(matches("sport/tennis#", "sport/tennis"));
    assert_false(matches("sport/#/ranking", "sport/x/ranking"));
    assert_false(matches("sport/tennis/#", "sport/tenni"));
}

static void test_hostile_topics(void **state)
{
    (void)state;
    assert_false(matches("#", "$SYS/broker"));
    assert_false(matches("+/broker", "$SYS/broker"));
    assert_true(matches("$SYS/#", "$SYS/broker"));
    assert_false(matches("/a/+", "/a/+"));  /* a wildcard inside a topic name is never a match */
    assert_false(matches("/a/#", "/a/#"));
    assert_false(alink_topic_matches("/a/b", "/a/b\0c", 5)); /* embedded NUL */
    assert_true(alink_topic_matches("/a/b", "/a/bXXXX", 4)); /* only topic_len bytes are read */
    assert_false(alink_topic_matches("", "", 0));
    assert_false(alink_topic_matches(NULL, "/a", 2));
    assert_false(alink_topic_matches("/a", NULL, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thing_model_topics),     cmocka_unit_test(test_build_buffer_edges),
        cmocka_unit_test(test_exact_and_level_wildcards), cmocka_unit_test(test_multi_level_wildcard),
        cmocka_unit_test(test_hostile_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
