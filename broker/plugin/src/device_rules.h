/*
 * The rules file `provision broker` writes for this plugin (mode 0600, deleted when the broker stops).
 * One record a line, fields separated by one TAB:
 *     device <ProductKey> <DeviceName> <DeviceSecret>
 *     route  <from topic filter> <to topic>
 *     console <password>     the console principal's password of this run (at most one record)
 * Empty lines and lines starting with '#' are ignored.
 */
#ifndef DEVICE_RULES_H
#define DEVICE_RULES_H

#include <stddef.h>

#include "aliyun_auth.h"

typedef struct {
    char product_key[ALIYUN_AUTH_PRODUCT_KEY_MAX + 1];
    char device_name[ALIYUN_AUTH_DEVICE_NAME_MAX + 1];
    char device_secret[ALIYUN_AUTH_DEVICE_SECRET_MAX + 1];
} device_entry_t;

typedef struct {
    char *from_filter;
    char *to_topic;
} route_entry_t;

/* provision.cloud.endpoint.new_console_password makes 32 characters */
#define DEVICE_RULES_CONSOLE_PASSWORD_MAX 128

typedef struct {
    device_entry_t *devices;
    size_t device_count;
    route_entry_t *routes;
    size_t route_count;
    /* empty: no console principal */
    char console_password[DEVICE_RULES_CONSOLE_PASSWORD_MAX + 1];
} device_rules_t;

/* Loads path into *rules. On failure returns non-zero and writes "line N: what" into error. */
int device_rules_load(const char *path, device_rules_t *rules, char *error, size_t error_size);

/* Wipes the secrets and frees everything. */
void device_rules_free(device_rules_t *rules);

const device_entry_t *device_rules_find(const device_rules_t *rules, const char *product_key,
                                        const char *device_name);

#endif
