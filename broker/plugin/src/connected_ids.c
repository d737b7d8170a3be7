#include "connected_ids.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const void *connection;
    char *client_id;
    char *username;
} connected_id_t;

static connected_id_t *entries;
static size_t entry_count;
static size_t entry_capacity;

bool connected_ids_taken_by_other(const char *client_id, const char *username)
{
    for (size_t i = 0; i < entry_count; i++) {
        if (strcmp(entries[i].client_id, client_id) == 0 && strcmp(entries[i].username, username) != 0) {
            return true;
        }
    }
    return false;
}

bool connected_ids_add(const void *connection, const char *client_id, const char *username)
{
    (void)connected_ids_remove(connection);
    if (entry_count == entry_capacity) {
        size_t grown_capacity = entry_capacity == 0 ? 64 : entry_capacity * 2;
        connected_id_t *grown = realloc(entries, grown_capacity * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        entries = grown;
        entry_capacity = grown_capacity;
    }
    char *id_copy = strdup(client_id);
    char *user_copy = strdup(username);
    if (id_copy == NULL || user_copy == NULL) {
        free(id_copy);
        free(user_copy);
        return false;
    }
    entries[entry_count++] = (connected_id_t){connection, id_copy, user_copy};
    return true;
}

bool connected_ids_remove(const void *connection)
{
    for (size_t i = 0; i < entry_count; i++) {
        if (entries[i].connection == connection) {
            free(entries[i].client_id);
            free(entries[i].username);
            entries[i] = entries[--entry_count];
            return true;
        }
    }
    return false;
}

bool connected_ids_username_held(const char *username)
{
    for (size_t i = 0; i < entry_count; i++) {
        if (strcmp(entries[i].username, username) == 0) {
            return true;
        }
    }
    return false;
}

void connected_ids_clear(void)
{
    for (size_t i = 0; i < entry_count; i++) {
        free(entries[i].client_id);
        free(entries[i].username);
    }
    free(entries);
    entries = NULL;
    entry_count = 0;
    entry_capacity = 0;
}
