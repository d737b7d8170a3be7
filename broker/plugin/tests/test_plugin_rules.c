/* Unit tests of the plugin's pure parts (client id parsing, topic rules, rules file), run under ASan and UBSan
 * by tests/broker/test_plugin_units.py. Mosquitto itself is not needed: these files include none of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_id.h"
#include "connected_ids.h"
#include "device_rules.h"
#include "server_subs.h"
#include "topic_rules.h"

static int failures;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static void test_client_id(void)
{
    client_id_t id;
    CHECK(client_id_parse("12345|securemode=2,signmethod=hmacsha1,timestamp=789|", &id) == CLIENT_ID_OK);
    CHECK(strcmp(id.id, "12345") == 0 && id.secure_mode == 2 && id.sign_method == ALIYUN_SIGN_HMACSHA1);
    CHECK(id.has_timestamp && strcmp(id.timestamp, "789") == 0);
    CHECK(client_id_parse("a|signmethod=hmacmd5,securemode=3,_v=sdk-c-4.1,lan=C|", &id) == CLIENT_ID_OK);
    CHECK(!id.has_timestamp && id.secure_mode == 3 && id.sign_method == ALIYUN_SIGN_HMACMD5);
    CHECK(client_id_parse("a|securemode=-2,signmethod=hmacsha256|", &id) == CLIENT_ID_OK && id.secure_mode == -2);
    CHECK(client_id_parse("plain", &id) == CLIENT_ID_ERR_NO_EXTENSION);
    CHECK(client_id_parse("|securemode=2,signmethod=hmacsha1|", &id) == CLIENT_ID_ERR_EMPTY);
    char long_id[200];
    memset(long_id, 'c', 65);
    strcpy(long_id + 65, "|securemode=2,signmethod=hmacsha1|");
    CHECK(client_id_parse(long_id, &id) == CLIENT_ID_ERR_TOO_LONG);
    memmove(long_id + 64, long_id + 65, strlen(long_id + 65) + 1);
    CHECK(client_id_parse(long_id, &id) == CLIENT_ID_OK && strlen(id.id) == 64);
    CHECK(client_id_parse("a|signmethod=hmacsha1|", &id) == CLIENT_ID_ERR_SECUREMODE);
    CHECK(client_id_parse("a|securemode=2|", &id) == CLIENT_ID_ERR_SIGNMETHOD);
    CHECK(client_id_parse("a|securemode=2,signmethod=sha1|", &id) == CLIENT_ID_ERR_SIGNMETHOD);
    CHECK(client_id_parse("a|securemode=x,signmethod=hmacsha1|", &id) == CLIENT_ID_ERR_SECUREMODE);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1,timestamp=12a|", &id) == CLIENT_ID_ERR_TIMESTAMP);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1,timestamp=123456789012345678901|", &id)
          == CLIENT_ID_ERR_TIMESTAMP);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1|tail", &id) == CLIENT_ID_ERR_SYNTAX);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1", &id) == CLIENT_ID_ERR_SYNTAX);
    CHECK(client_id_parse("a|securemode=2,novalue,signmethod=hmacsha1|", &id) == CLIENT_ID_ERR_SYNTAX);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|", &id)
          == CLIENT_ID_ERR_SIGNMETHOD);
    CHECK(client_id_parse(NULL, &id) == CLIENT_ID_ERR_SYNTAX);
}

static void test_topics(void)
{
    CHECK(topic_allowed_for_device("pk", "dn", "/sys/pk/dn/thing/event/property/post", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/pk/dn/user/setled", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/ext/ntp/pk/dn/request", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/ext/rrpc/+/sys/pk/dn/thing/service/x", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/sys/pk/dn/#", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/sys/pk/dn", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/sys/pk/dn2/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/sys/pk2/dn/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/sys/+/+/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ext/pk/dn/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ext/#", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "#", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/pkx/dn/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "", "/pk//x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "", "/pk//x", TOPIC_UP));

    /* one-way topics (OTA, shadow, broadcast) */
    CHECK(topic_allowed_for_device("pk", "dn", "/ota/device/inform/pk/dn", TOPIC_UP));
    CHECK(topic_allowed_for_device("pk", "dn", "/ota/device/progress/pk/dn", TOPIC_UP));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ota/device/inform/pk/dn", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/ota/device/upgrade/pk/dn", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ota/device/upgrade/pk/dn", TOPIC_UP));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ota/device/upgrade/pk/dn2", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ota/device/upgrade/pk/dn/x", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/ota/device/upgrade/pk/+", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/shadow/update/pk/dn", TOPIC_UP));
    CHECK(topic_allowed_for_device("pk", "dn", "/shadow/get/pk/dn", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/shadow/get/pk/dn", TOPIC_UP));
    CHECK(topic_allowed_for_device("pk", "dn", "/broadcast/pk/#", TOPIC_DOWN));
    CHECK(topic_allowed_for_device("pk", "dn", "/broadcast/pk/news", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/broadcast/pk/news", TOPIC_UP));
    CHECK(!topic_allowed_for_device("pk", "dn", "/broadcast/pk2/news", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/broadcast/+/news", TOPIC_DOWN));
    CHECK(!topic_allowed_for_device("pk", "dn", "/broadcast/pk/", TOPIC_DOWN));

    /* names that would break topics (issue 9: a ProductKey "a1ProbePK01/dev-bbbb") */
    CHECK(product_key_valid("a1ProbePK01"));
    CHECK(!product_key_valid("a1ProbePK01/dev-bbbb") && !product_key_valid("pk+") && !product_key_valid(""));
    CHECK(device_name_valid("dev-1_a@b.c:d"));
    CHECK(!device_name_valid("dev/1") && !device_name_valid("#") && !device_name_valid("a&b") && !device_name_valid(""));
    CHECK(!topic_allowed_for_device("pk/dn2", "x", "/sys/pk/dn2/x/thing", TOPIC_DOWN));

    CHECK(topic_filter_matches("/a/b", "/a/b"));
    CHECK(!topic_filter_matches("/a/b", "/a/bc"));
    CHECK(!topic_filter_matches("/a/b", "/a/b/c"));
    CHECK(topic_filter_matches("/a/+", "/a/b"));
    CHECK(!topic_filter_matches("/a/+", "/a/b/c"));
    CHECK(topic_filter_matches("/a/+/c", "/a/b/c"));
    CHECK(topic_filter_matches("/a/#", "/a/b/c"));
    CHECK(topic_filter_matches("/a/#", "/a"));
    CHECK(topic_filter_matches("#", "/x/y"));
    CHECK(!topic_filter_matches("/a/+/c", "/a/b/d"));
}

static void test_rules_file(const char *dir)
{
    char path[512];
    char error[128];
    device_rules_t rules;
    snprintf(path, sizeof path, "%s/rules", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    fputs("# comment\n\ndevice\tpk\tdn1\tsecret1\ndevice\tpk\tdn2\tsecret2\nroute\t/pk/dn1/user/+\t/pk/dn2/user/x\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) == 0);
    CHECK(rules.device_count == 2 && rules.route_count == 1);
    const device_entry_t *d = device_rules_find(&rules, "pk", "dn2");
    CHECK(d != NULL && strcmp(d->device_secret, "secret2") == 0);
    CHECK(device_rules_find(&rules, "pk", "dn3") == NULL);
    CHECK(rules.console_password[0] == '\0');
    device_rules_free(&rules);

    f = fopen(path, "w");
    fputs("console\tpw-1\ndevice\tpk\tdn1\tsecret1\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) == 0);
    CHECK(strcmp(rules.console_password, "pw-1") == 0);
    device_rules_free(&rules);
    f = fopen(path, "w");
    fputs("console\tpw-1\nconsole\tpw-2\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);

    f = fopen(path, "w");
    fputs("device\tpk\tdn1\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);
    CHECK(strstr(error, "line 1") != NULL);

    f = fopen(path, "w");
    fputs("device\tpk/dn2\tdn1\tsecret1\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);
    f = fopen(path, "w");
    fputs("device\tpk\tdn/1\tsecret1\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);

    f = fopen(path, "w");
    fputs("device\tpk\tdn1\t", f);
    for (int i = 0; i < 200; i++) {
        fputc('s', f); /* a secret over ALIYUN_AUTH_DEVICE_SECRET_MAX */
    }
    fputs("\n", f);
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);

    f = fopen(path, "w");
    for (int i = 0; i < 2000; i++) {
        fputc('x', f); /* a line longer than the reader's buffer */
    }
    fclose(f);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);
    remove(path);
    CHECK(device_rules_load(path, &rules, error, sizeof error) != 0);
}

static void test_connected_ids(void)
{
    int a, b, c;
    CHECK(!connected_ids_taken_by_other("id1", "dn1&pk"));
    CHECK(connected_ids_add(&a, "id1", "dn1&pk"));
    CHECK(!connected_ids_taken_by_other("id1", "dn1&pk"));
    CHECK(connected_ids_taken_by_other("id1", "dn2&pk"));
    CHECK(!connected_ids_taken_by_other("id2", "dn2&pk"));
    for (int i = 0; i < 100; i++) {
        CHECK(connected_ids_add(&b, "id2", "dn2&pk")); /* re-adding replaces, and growth keeps entries */
    }
    CHECK(connected_ids_taken_by_other("id2", "dn1&pk"));
    CHECK(!connected_ids_remove(&c));
    CHECK(connected_ids_username_held("dn1&pk"));
    CHECK(connected_ids_remove(&a));
    CHECK(!connected_ids_username_held("dn1&pk"));
    CHECK(!connected_ids_taken_by_other("id1", "dn2&pk"));
    CHECK(connected_ids_taken_by_other("id2", "dn1&pk"));
    connected_ids_clear();
    CHECK(!connected_ids_taken_by_other("id2", "dn1&pk"));
}

static int deliveries;
static void count_delivery(const char *mqtt_client_id, void *context)
{
    (void)context;
    CHECK(strcmp(mqtt_client_id, "pk.dn|_ss=1|") == 0);
    deliveries++;
}

static void test_server_subs(void)
{
    client_id_t id;
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1,_ss=1|", &id) == CLIENT_ID_OK && id.server_subscribe);
    CHECK(client_id_parse("a|securemode=2,signmethod=hmacsha1,_ss=0|", &id) == CLIENT_ID_OK && !id.server_subscribe);
    const char *down[] = {"/sys/pk/dn/thing/service/property/set", "/sys/pk/dn/thing/service/reboot",
                          "/sys/pk/dn/thing/event/property/post_reply", "/sys/pk/dn/thing/event/alarm/post_reply",
                          "/sys/pk/dn/thing/service/reboot_reply", "/sys/pk/dn/rrpc/request/123",
                          "/ext/ntp/pk/dn/response", "/ota/device/upgrade/pk/dn", "/shadow/get/pk/dn",
                          "/broadcast/pk/news/today"};
    for (size_t i = 0; i < sizeof down / sizeof down[0]; i++) {
        CHECK(server_subs_topic_for_device("pk", "dn", down[i]));
    }
    const char *not_down[] = {"/sys/pk/dn/thing/event/property/post", "/sys/pk/dn2/thing/service/property/set",
                              "/sys/pk/dn/rrpc/request/1/x", "/ext/ntp/pk/dn/request", "/ota/device/upgrade/pk/dn2",
                              "/shadow/update/pk/dn", "/broadcast/pk2/news", "/pk/dn/user/get", "/sys/pk/dnx/a_reply"};
    for (size_t i = 0; i < sizeof not_down / sizeof not_down[0]; i++) {
        CHECK(!server_subs_topic_for_device("pk", "dn", not_down[i]));
    }
    int a, b;
    CHECK(server_subs_add(&a, "pk.dn|_ss=1|", "pk", "dn"));
    server_subs_note_subscribe(&b, "#"); /* not registered: ignored */
    server_subs_targets("/sys/pk/dn/thing/service/property/set", count_delivery, NULL);
    CHECK(deliveries == 1);
    server_subs_note_subscribe(&a, "/sys/pk/dn/thing/service/+/+");
    server_subs_targets("/sys/pk/dn/thing/service/property/set", count_delivery, NULL);
    CHECK(deliveries == 1); /* subscribed: Mosquitto delivers it, not the plugin */
    server_subs_targets("/sys/pk/dn/thing/event/property/post_reply", count_delivery, NULL);
    CHECK(deliveries == 2);
    server_subs_note_unsubscribe(&a, "/sys/pk/dn/thing/service/+/+");
    server_subs_targets("/sys/pk/dn/thing/service/property/set", count_delivery, NULL);
    CHECK(deliveries == 3);
    server_subs_remove(&a);
    server_subs_targets("/sys/pk/dn/thing/service/property/set", count_delivery, NULL);
    CHECK(deliveries == 3);
    server_subs_clear();
}

int main(int argc, char **argv)
{
    test_server_subs();
    test_connected_ids();
    test_client_id();
    test_topics();
    test_rules_file(argc > 1 ? argv[1] : ".");
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("plugin rules: all checks passed");
    return 0;
}
