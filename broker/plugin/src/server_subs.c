#include "server_subs.h"

#include <stdlib.h>
#include <string.h>

#include "topic_rules.h"

typedef struct {
    const void *connection;
    char *client_id;
    char *product_key;
    char *device_name;
    char **filters;
    size_t filter_count;
} server_sub_t;

static server_sub_t *subs;
static size_t sub_count;

/* True when topic is prefix + "{pk}/{dn}" + suffix exactly. */
static bool device_topic(const char *topic, const char *prefix, const char *pk, const char *dn, const char *suffix)
{
    size_t len = strlen(prefix);
    if (strncmp(topic, prefix, len) != 0) {
        return false;
    }
    topic += len;
    len = strlen(pk);
    if (strncmp(topic, pk, len) != 0 || topic[len] != '/') {
        return false;
    }
    topic += len + 1;
    len = strlen(dn);
    if (strncmp(topic, dn, len) != 0) {
        return false;
    }
    return strcmp(topic + len, suffix) == 0;
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t text_len = strlen(text);
    size_t suffix_len = strlen(suffix);
    return text_len >= suffix_len && strcmp(text + text_len - suffix_len, suffix) == 0;
}

bool server_subs_topic_for_device(const char *pk, const char *dn, const char *topic)
{
    if (device_topic(topic, "/ext/ntp/", pk, dn, "/response") || device_topic(topic, "/ota/device/upgrade/", pk, dn, "")
        || device_topic(topic, "/shadow/get/", pk, dn, "")) {
        return true;
    }
    size_t pk_len = strlen(pk);
    if (strncmp(topic, "/broadcast/", 11) == 0 && strncmp(topic + 11, pk, pk_len) == 0 && topic[11 + pk_len] == '/'
        && topic[12 + pk_len] != '\0') {
        return true;
    }
    size_t dn_len = strlen(dn);
    if (strncmp(topic, "/sys/", 5) != 0 || strncmp(topic + 5, pk, pk_len) != 0 || topic[5 + pk_len] != '/'
        || strncmp(topic + 6 + pk_len, dn, dn_len) != 0 || topic[6 + pk_len + dn_len] != '/') {
        return false;
    }
    const char *rest = topic + 6 + pk_len + dn_len; /* "/..." */
    if (strncmp(rest, "/thing/service/", 15) == 0 && rest[15] != '\0') {
        return true;
    }
    if (strncmp(rest, "/rrpc/request/", 14) == 0 && rest[14] != '\0' && strchr(rest + 14, '/') == NULL) {
        return true;
    }
    return ends_with(rest, "_reply");
}

static server_sub_t *find(const void *connection)
{
    for (size_t i = 0; i < sub_count; i++) {
        if (subs[i].connection == connection) {
            return &subs[i];
        }
    }
    return NULL;
}

static void free_entry(server_sub_t *entry)
{
    free(entry->client_id);
    free(entry->product_key);
    free(entry->device_name);
    for (size_t i = 0; i < entry->filter_count; i++) {
        free(entry->filters[i]);
    }
    free(entry->filters);
}

bool server_subs_add(const void *connection, const char *mqtt_client_id, const char *product_key,
                     const char *device_name)
{
    server_subs_remove(connection);
    server_sub_t *grown = realloc(subs, (sub_count + 1) * sizeof *grown);
    if (grown == NULL) {
        return false;
    }
    subs = grown;
    server_sub_t entry = {connection, strdup(mqtt_client_id), strdup(product_key), strdup(device_name), NULL, 0};
    if (entry.client_id == NULL || entry.product_key == NULL || entry.device_name == NULL) {
        free_entry(&entry);
        return false;
    }
    subs[sub_count++] = entry;
    return true;
}

void server_subs_remove(const void *connection)
{
    server_sub_t *entry = find(connection);
    if (entry != NULL) {
        free_entry(entry);
        *entry = subs[--sub_count];
    }
}

void server_subs_note_subscribe(const void *connection, const char *filter)
{
    server_sub_t *entry = find(connection);
    if (entry == NULL) {
        return;
    }
    for (size_t i = 0; i < entry->filter_count; i++) {
        if (strcmp(entry->filters[i], filter) == 0) {
            return;
        }
    }
    char **grown = realloc(entry->filters, (entry->filter_count + 1) * sizeof *grown);
    if (grown == NULL) {
        return; /* then a message may come twice: better than not at all */
    }
    entry->filters = grown;
    char *copy = strdup(filter);
    if (copy != NULL) {
        entry->filters[entry->filter_count++] = copy;
    }
}

void server_subs_note_unsubscribe(const void *connection, const char *filter)
{
    server_sub_t *entry = find(connection);
    for (size_t i = 0; entry != NULL && i < entry->filter_count; i++) {
        if (strcmp(entry->filters[i], filter) == 0) {
            free(entry->filters[i]);
            entry->filters[i] = entry->filters[--entry->filter_count];
            return;
        }
    }
}

void server_subs_targets(const char *topic, void (*deliver)(const char *mqtt_client_id, void *context),
                         void *context)
{
    for (size_t i = 0; i < sub_count; i++) {
        const server_sub_t *entry = &subs[i];
        if (!server_subs_topic_for_device(entry->product_key, entry->device_name, topic)) {
            continue;
        }
        bool subscribed = false;
        for (size_t f = 0; f < entry->filter_count && !subscribed; f++) {
            subscribed = topic_filter_matches(entry->filters[f], topic);
        }
        if (!subscribed) {
            deliver(entry->client_id, context);
        }
    }
}

void server_subs_clear(void)
{
    for (size_t i = 0; i < sub_count; i++) {
        free_entry(&subs[i]);
    }
    free(subs);
    subs = NULL;
    sub_count = 0;
}
