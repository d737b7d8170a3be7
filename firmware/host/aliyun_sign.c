/* aliyun_sign: the MQTT CONNECT parameters for one device, from aliyun_auth. Same flags and same
 * output (plain and --json) as `provision sign`, so the two can be compared on random inputs
 * (tests/firmware/test_sign_differential.py). Exit 0 on success, 2 on a usage error, 3 on a value
 * the platform would refuse. The secret is never printed. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "aliyun_auth.h"

enum { EXIT_USAGE = 2, EXIT_INPUT = 3 };

typedef struct {
    const char *product_key;
    const char *device_name;
    const char *device_secret;
    const char *client_id;
    const char *timestamp;
    const char *sign_method;
    const char *secure_mode;
    const char *region;
    const char *endpoint;
    int json;
} options_t;

static int usage(const char *problem)
{
    fprintf(stderr, "aliyun_sign: %s\n", problem);
    fprintf(stderr, "usage: aliyun_sign --product-key PK --device-name DN --device-secret S [--client-id ID]\n"
                    "       [--timestamp MS|now|none] [--sign-method hmacmd5|hmacsha1|hmacsha256]\n"
                    "       [--secure-mode 2|3] [--region R] [--endpoint HOST] [--json]\n"
                    "       (--device-secret may come from $PROVISION_DEVICE_SECRET)\n");
    return EXIT_USAGE;
}

/* Accepts "--flag value" and "--flag=value", as click does. */
static int parse_args(int argc, char **argv, options_t *o)
{
    struct {
        const char *flag;
        const char **value;
    } flags[] = {
        {"--product-key", &o->product_key}, {"--device-name", &o->device_name},
        {"--device-secret", &o->device_secret}, {"--client-id", &o->client_id},
        {"--timestamp", &o->timestamp},     {"--sign-method", &o->sign_method},
        {"--secure-mode", &o->secure_mode}, {"--region", &o->region},
        {"--endpoint", &o->endpoint},
    };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
            continue;
        }
        size_t k = 0;
        for (; k < sizeof flags / sizeof flags[0]; k++) {
            size_t n = strlen(flags[k].flag);
            if (strncmp(argv[i], flags[k].flag, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '=')) {
                if (argv[i][n] == '=') {
                    *flags[k].value = argv[i] + n + 1;
                } else if (i + 1 < argc) {
                    *flags[k].value = argv[++i];
                } else {
                    fprintf(stderr, "aliyun_sign: %s needs a value\n", flags[k].flag);
                    return EXIT_USAGE;
                }
                break;
            }
        }
        if (k == sizeof flags / sizeof flags[0]) {
            fprintf(stderr, "aliyun_sign: unknown argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* `provision sign` reads "now", "none" or decimal milliseconds (surrounding space ignored, case
 * folded) and prints the number as an integer, so leading zeros are dropped here too. */
static int normalise_timestamp(const char *text, char *out, size_t out_size, int *present)
{
    char word[32];
    size_t start = 0, end = strlen(text);
    while (start < end && isspace((unsigned char)text[start])) {
        start++;
    }
    while (end > start && isspace((unsigned char)text[end - 1])) {
        end--;
    }
    if (end - start >= sizeof word) {
        return -1;
    }
    for (size_t i = start; i < end; i++) {
        word[i - start] = (char)tolower((unsigned char)text[i]);
    }
    word[end - start] = '\0';
    *present = 1;
    if (strcmp(word, "none") == 0) {
        *present = 0;
        return 0;
    }
    if (strcmp(word, "now") == 0) {
        struct timeval tv;
        if (gettimeofday(&tv, NULL) != 0) {
            return -1;
        }
        uint64_t ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
        return snprintf(out, out_size, "%" PRIu64, ms) < (int)out_size ? 0 : -1;
    }
    if (word[0] == '\0' || word[strspn(word, "0123456789")] != '\0') {
        return -1;
    }
    errno = 0;
    unsigned long long value = strtoull(word, NULL, 10);
    if (errno == ERANGE) {
        return -1;
    }
    return snprintf(out, out_size, "%llu", value) < (int)out_size ? 0 : -1;
}

/* A JSON string as Python's json.dumps writes it (ensure_ascii): all inputs here are ASCII. */
static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static const char *field_name(aliyun_auth_field_t f)
{
    static const char *const names[] = {"request", "product key", "device name", "device secret",
                                        "client id", "timestamp",   "region",      "endpoint"};
    return (unsigned)f < sizeof names / sizeof names[0] ? names[f] : "request";
}

int main(int argc, char **argv)
{
    options_t o = {0};
    o.timestamp = "now";
    o.sign_method = "hmacsha1";
    o.secure_mode = "2";
    o.region = "cn-shanghai";
    o.device_secret = getenv("PROVISION_DEVICE_SECRET");
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        return rc;
    }
    if (!o.product_key || !o.device_name || !o.device_secret) {
        return usage("--product-key, --device-name and --device-secret are required");
    }
    aliyun_auth_request_t req = {0};
    if (aliyun_sign_method_parse(o.sign_method, &req.sign_method) != ALIYUN_AUTH_OK) {
        return usage("--sign-method must be hmacmd5, hmacsha1 or hmacsha256");
    }
    if (strcmp(o.secure_mode, "2") != 0 && strcmp(o.secure_mode, "3") != 0) {
        return usage("--secure-mode must be 2 (TLS) or 3 (TCP)");
    }
    char timestamp[ALIYUN_AUTH_TIMESTAMP_MAX + 1];
    int has_timestamp = 0;
    if (normalise_timestamp(o.timestamp, timestamp, sizeof timestamp, &has_timestamp) != 0) {
        fprintf(stderr, "aliyun_sign: timestamp: '%s' is not milliseconds, 'now' or 'none'\n", o.timestamp);
        return EXIT_INPUT;
    }
    req.product_key = o.product_key;
    req.device_name = o.device_name;
    req.device_secret = o.device_secret;
    req.client_id = o.client_id ? o.client_id : o.device_name;
    req.timestamp = has_timestamp ? timestamp : NULL;
    req.secure_mode = o.secure_mode[0] - '0';
    req.region = o.region;
    req.endpoint = o.endpoint;

    aliyun_auth_credentials_t creds;
    aliyun_auth_field_t bad = ALIYUN_FIELD_NONE;
    aliyun_auth_status_t st = aliyun_auth_sign(&req, &creds, &bad);
    if (st != ALIYUN_AUTH_OK) {
        fprintf(stderr, "aliyun_sign: %s: %s\n", field_name(bad), aliyun_auth_strerror(st));
        return EXIT_INPUT;
    }
    const char *method = aliyun_sign_method_name(req.sign_method);
    if (o.json) {
        const char *keys[] = {"client_id", "username", "password", "host"};
        const char *values[] = {creds.client_id, creds.username, creds.password, creds.host};
        putchar('{');
        for (size_t i = 0; i < 4; i++) {
            printf("\"%s\": ", keys[i]);
            print_json_string(values[i]);
            fputs(", ", stdout);
        }
        printf("\"port\": %u, \"sign_method\": ", (unsigned)creds.port);
        print_json_string(method);
        printf(", \"timestamp\": %s}\n", has_timestamp ? timestamp : "null");
    } else {
        printf("client_id: %s\nusername: %s\npassword: %s\nhost: %s\nport: %u\nsign_method: %s\ntimestamp: %s\n",
               creds.client_id, creds.username, creds.password, creds.host, (unsigned)creds.port, method,
               has_timestamp ? timestamp : "None");
    }
    memset(&creds, 0, sizeof creds);
    return fflush(stdout) == 0 ? 0 : 1;
}
