/*
 * The host device's application over the thing model it was built with (thing_model.h: the example product,
 * or any TSL given as -DALIYUN_THING_MODEL). It implements what the rendered component asks of an
 * application, generically through the descriptor table, so that tests can drive any model:
 *   - readings: every property starts at a deterministic value (numbers: the step-grid point nearest the
 *     middle of [min,max]; bool 0; enum its first value; text ""; date 0; struct: each member so;
 *     array: empty); `--reading ID=JSON` sets one (checked against its descriptor), a read-only one
 *     is reported so before every post, a writable one starts so;
 *   - sets: "host: applied {changed values}" once the core applied a set;
 *   - services: "host: service <Id> input {inputs}", outputs at their deterministic values, code 200;
 *   - events: `--event ID[=JSON]` (JSON: an object of the event's outputs; without it, their deterministic
 *     values) posted once when the device is first online.
 * With --stdin, the same as lines on standard input, at any time: `reading ID=JSON`, `event ID[=JSON]`.
 * One device per process: the state is static, as the callbacks thing_model.h declares take no context.
 */
#ifndef HOST_THING_H
#define HOST_THING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aliyun_link.h"

/* Every property at its deterministic value; call once before the options are read. */
void host_thing_init(void);

/* `--reading ID=JSON`; false with a one-line reason (the value is not quoted back) when it does not fit. */
bool host_thing_reading(const char *assignment, char *why, size_t why_size);

/* `--event ID[=JSON]`: queues the event for the next time the device is online; false with a reason. */
bool host_thing_event(const char *assignment, char *why, size_t why_size);

/* Points the core's thing-model fields at this application's buffers. */
void host_thing_configure(alink_config_t *config);

/* Before each TICK: the read-only readings into the live values (thing_read_properties). */
void host_thing_refresh(void);

/* After events were fed: when the core is online, posts the queued events. */
void host_thing_post_events(alink_t *core, uint64_t now_ms);

/* With --stdin: reads the lines standard input has ready, without blocking; false once it is closed. */
bool host_thing_read_stdin(void);

#endif /* HOST_THING_H */
