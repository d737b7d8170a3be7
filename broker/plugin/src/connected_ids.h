/*
 * Which device holds which bare client id (the part before '|'), across every listener of the broker (one table per process:
 * Mosquitto runs plugin callbacks on its single main thread). Mosquitto itself hands a client id in use to
 * the newcomer and closes the first connection; the platform refuses the newcomer when it is another
 * device (issue 10), so the plugin asks this table before it accepts a CONNECT.
 */
#ifndef CONNECTED_IDS_H
#define CONNECTED_IDS_H

#include <stdbool.h>

/* True when client_id is held by a connection whose username differs from username. */
bool connected_ids_taken_by_other(const char *client_id, const char *username);

/* Records that connection (an opaque key) holds client_id as username; false when out of memory. */
bool connected_ids_add(const void *connection, const char *client_id, const char *username);

/* Forgets the connection (it disconnected); false when it was never added. */
bool connected_ids_remove(const void *connection);

/* True when some connection in the table is logged in as username. */
bool connected_ids_username_held(const char *username);

/* Frees the table (plugin cleanup of the last instance, and tests). */
void connected_ids_clear(void);

#endif
