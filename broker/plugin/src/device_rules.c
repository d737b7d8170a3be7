#include "device_rules.h"
#include "topic_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_LINE_MAX 1024

static int copy_field(char *dst, size_t dst_size, const char *src)
{
    size_t len = strlen(src);
    if (len == 0 || len >= dst_size) {
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

/* Splits line at TABs into at most max fields; returns the count. */
static size_t split_tabs(char *line, char **fields, size_t max)
{
    size_t count = 0;
    char *cursor = line;
    while (count < max) {
        fields[count++] = cursor;
        char *tab = strchr(cursor, '\t');
        if (tab == NULL) {
            break;
        }
        *tab = '\0';
        cursor = tab + 1;
    }
    return count;
}

static int add_device(device_rules_t *rules, char **fields)
{
    device_entry_t *grown = realloc(rules->devices, (rules->device_count + 1) * sizeof *grown);
    if (grown == NULL) {
        return -1;
    }
    rules->devices = grown;
    device_entry_t *entry = &grown[rules->device_count];
    memset(entry, 0, sizeof *entry);
    if (copy_field(entry->product_key, sizeof entry->product_key, fields[1]) != 0
        || copy_field(entry->device_name, sizeof entry->device_name, fields[2]) != 0
        || copy_field(entry->device_secret, sizeof entry->device_secret, fields[3]) != 0
        || !product_key_valid(entry->product_key) || !device_name_valid(entry->device_name)) {
        memset(entry, 0, sizeof *entry);
        return -1;
    }
    rules->device_count++;
    return 0;
}

static int add_route(device_rules_t *rules, char **fields)
{
    if (fields[1][0] == '\0' || fields[2][0] == '\0') {
        return -1;
    }
    route_entry_t *grown = realloc(rules->routes, (rules->route_count + 1) * sizeof *grown);
    if (grown == NULL) {
        return -1;
    }
    rules->routes = grown;
    route_entry_t *entry = &grown[rules->route_count];
    entry->from_filter = strdup(fields[1]);
    entry->to_topic = strdup(fields[2]);
    if (entry->from_filter == NULL || entry->to_topic == NULL) {
        free(entry->from_filter);
        free(entry->to_topic);
        return -1;
    }
    rules->route_count++;
    return 0;
}

int device_rules_load(const char *path, device_rules_t *rules, char *error, size_t error_size)
{
    memset(rules, 0, sizeof *rules);
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(error, error_size, "cannot open the rules file");
        return -1;
    }
    char line[RULES_LINE_MAX];
    unsigned line_no = 0;
    int status = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        line_no++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') {
            line[--len] = '\0';
        } else if (!feof(file)) {
            snprintf(error, error_size, "line %u: longer than %d bytes", line_no, RULES_LINE_MAX - 2);
            status = -1;
            break;
        }
        if (len == 0 || line[0] == '#') {
            continue;
        }
        char *fields[5];
        size_t count = split_tabs(line, fields, 5);
        int rc;
        if (strcmp(fields[0], "device") == 0 && count == 4) {
            rc = add_device(rules, fields);
        } else if (strcmp(fields[0], "route") == 0 && count == 3) {
            rc = add_route(rules, fields);
        } else if (strcmp(fields[0], "console") == 0 && count == 2 && rules->console_password[0] == '\0'
                   && fields[1][0] != '\0') {
            rc = copy_field(rules->console_password, sizeof rules->console_password, fields[1]);
        } else {
            rc = -1;
        }
        if (rc != 0) {
            snprintf(error, error_size, "line %u: not a valid device or route record", line_no);
            status = -1;
            break;
        }
    }
    /* the line buffer held a secret */
    memset(line, 0, sizeof line);
    fclose(file);
    if (status != 0) {
        device_rules_free(rules);
    }
    return status;
}

void device_rules_free(device_rules_t *rules)
{
    if (rules->devices != NULL) {
        memset(rules->devices, 0, rules->device_count * sizeof *rules->devices);
        free(rules->devices);
    }
    for (size_t i = 0; i < rules->route_count; i++) {
        free(rules->routes[i].from_filter);
        free(rules->routes[i].to_topic);
    }
    free(rules->routes);
    memset(rules, 0, sizeof *rules);
}

const device_entry_t *device_rules_find(const device_rules_t *rules, const char *product_key,
                                        const char *device_name)
{
    for (size_t i = 0; i < rules->device_count; i++) {
        const device_entry_t *entry = &rules->devices[i];
        if (strcmp(entry->product_key, product_key) == 0 && strcmp(entry->device_name, device_name) == 0) {
            return entry;
        }
    }
    return NULL;
}
