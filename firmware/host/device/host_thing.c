/* The host device's stand-in application over any rendered thing model (host_thing.h). */
#define _POSIX_C_SOURCE 200809L /* poll() under -std=c11 */

#include "host_thing.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "thing_model.h"

#define PAYLOAD_SIZE 4096u   /* a post of every property of a large model, or a reply with outputs */
#define EVENTS_QUEUED 8u
#define IDENTIFIER_MAX 64u   /* longer than any TSL identifier (provision.tsl: at most 50) */
#define LINE_MAX_BYTES 1200u /* an `event ID=JSON` line around the engine's ALINK_INBOUND_MAX */
#define CHANGE_POST_MIN_INTERVAL_MS 1000u

/* Room for the largest output, input and event struct of whatever model this is built with; the
 * `none` member keeps each union valid for a model with no events or services. */
#define EVENT_MEMBER(id) thing_event_##id##_t id;
#define INPUT_MEMBER(id) thing_service_##id##_input_t id;
#define OUTPUT_MEMBER(id) thing_service_##id##_output_t id;
typedef union {
    uint8_t none;
    THING_EVENT_LIST(EVENT_MEMBER)
} event_output_t;
typedef union {
    uint8_t none;
    THING_SERVICE_LIST(INPUT_MEMBER)
} service_input_t;
typedef union {
    uint8_t none;
    THING_SERVICE_LIST(OUTPUT_MEMBER)
} service_output_t;

typedef struct {
    uint32_t index;
    event_output_t output;
} queued_event_t;

static thing_properties_t s_props;    /* live: what the core sets and posts */
static thing_properties_t s_staging;  /* the core's scratch for all-or-nothing sets */
static thing_properties_t s_posted;   /* the values last posted: changes are posted on the next TICK */
static thing_properties_t s_readings; /* what the stand-in sensors read */
static service_input_t s_input;
static service_output_t s_output;
static char s_payload[PAYLOAD_SIZE];
static queued_event_t s_events[EVENTS_QUEUED];
static unsigned s_event_count;
static char s_line[LINE_MAX_BYTES + 1];
static size_t s_line_len;
static bool s_line_too_long;

/* ---- deterministic values -------------------------------------------------------------------- */

/* The grid point (min + k*step) nearest the middle of [min, max]. */
static double middle(const alink_thing_field_t *f, double default_step)
{
    double step = f->step > 0 ? f->step : default_step;
    if (step <= 0) {
        return f->min + (f->max - f->min) / 2;
    }
    return f->min + step * round((f->max - f->min) / 2 / step);
}

static void fill_default(const alink_thing_field_t *f, unsigned char *base)
{
    unsigned char *at = base + f->offset;
    switch (f->type) {
    case ALINK_THING_INT: {
        int32_t v = (int32_t)middle(f, 1);
        memcpy(at, &v, sizeof v);
        break;
    }
    case ALINK_THING_FLOAT: {
        float v = (float)middle(f, 0);
        memcpy(at, &v, sizeof v);
        break;
    }
    case ALINK_THING_DOUBLE: {
        double v = middle(f, 0);
        memcpy(at, &v, sizeof v);
        break;
    }
    case ALINK_THING_ENUM:
        memcpy(at, &f->enum_values[0], sizeof f->enum_values[0]);
        break;
    case ALINK_THING_STRUCT:
        for (uint32_t i = 0; i < f->member_count; i++) {
            fill_default(&f->members[i], at);
        }
        break;
    case ALINK_THING_ARRAY:
        memset(at, 0, sizeof(uint32_t));
        memset(base + f->items_offset, 0, (size_t)f->array_size * f->item_stride);
        break;
    case ALINK_THING_BOOL:
    case ALINK_THING_TEXT:
    case ALINK_THING_DATE:
        memset(at, 0, f->size);
        break;
    }
}

static void copy_field(const alink_thing_field_t *f, void *to, const void *from)
{
    memcpy((unsigned char *)to + f->offset, (const unsigned char *)from + f->offset, f->size);
}

void host_thing_init(void)
{
    memset(&s_readings, 0, sizeof s_readings);
    for (uint32_t i = 0; i < thing_model.property_count; i++) {
        fill_default(&thing_model.properties[i], (unsigned char *)&s_readings);
    }
    s_props = s_readings;
    s_posted = s_readings;
}

/* ---- the callbacks thing_model.h declares --------------------------------------------------- */

void thing_read_properties(thing_properties_t *props)
{
    for (uint32_t i = 0; i < thing_model.property_count; i++) {
        if (thing_model.properties[i].access == ALINK_THING_R) {
            copy_field(&thing_model.properties[i], props, &s_readings);
        }
    }
}

void thing_apply_properties(const thing_properties_t *props, uint64_t changed)
{
    char json[PAYLOAD_SIZE];
    if (changed == 0) {
        return;
    }
    if (alink_thing_values_json(thing_model.properties, thing_model.property_count, changed, props, json,
                                sizeof json, NULL) != ALINK_OK) {
        snprintf(json, sizeof json, "(too large to show)");
    }
    printf("host: applied %s\n", json);
}

static int run_service(uint32_t index, const void *input, void *output)
{
    const alink_thing_service_t *s = &thing_model.services[index];
    char json[PAYLOAD_SIZE];
    if (alink_thing_values_json(s->inputs, s->input_count, 0, input, json, sizeof json, NULL) != ALINK_OK) {
        snprintf(json, sizeof json, "(too large to show)");
    }
    printf("host: service %s input %s\n", s->identifier, json);
    for (uint32_t i = 0; i < s->output_count; i++) {
        fill_default(&s->outputs[i], output);
    }
    return ALINK_CODE_OK;
}

#define SERVICE_FUNCTION(id)                                                                                  \
    int thing_service_##id(const thing_service_##id##_input_t *input, thing_service_##id##_output_t *output) \
    {                                                                                                         \
        return run_service(THING_SERVICE_##id, input, output);                                               \
    }
THING_SERVICE_LIST(SERVICE_FUNCTION)

/* ---- settings from the command line and stdin ------------------------------------------------ */

/* Splits `ID=JSON` (or `ID` when the value may be left out); false when the identifier cannot be one. */
static bool split(const char *assignment, bool value_required, char *identifier, const char **json)
{
    const char *eq = strchr(assignment, '=');
    size_t n = eq != NULL ? (size_t)(eq - assignment) : strlen(assignment);
    if (n == 0 || n >= IDENTIFIER_MAX || (eq == NULL && value_required)) {
        return false;
    }
    memcpy(identifier, assignment, n);
    identifier[n] = '\0';
    *json = eq != NULL ? eq + 1 : NULL;
    return true;
}

bool host_thing_reading(const char *assignment, char *why, size_t why_size)
{
    char identifier[IDENTIFIER_MAX];
    const char *json = NULL;
    if (!split(assignment, true, identifier, &json)) {
        snprintf(why, why_size, "--reading: expected IDENTIFIER=JSON_VALUE, e.g. CurrentTemperature=21.5");
        return false;
    }
    int index = alink_thing_property_index(&thing_model, identifier);
    if (index < 0) {
        /* not quoted back: an argument in the wrong place may be anything */
        snprintf(why, why_size, "--reading: no property of the thing model has that identifier "
                                "(thing_model.h lists them)");
        return false;
    }
    const alink_thing_field_t *f = &thing_model.properties[index];
    thing_properties_t parsed = s_readings; /* a refused value leaves the readings as they were */
    alink_status_t st = alink_thing_value_parse(f, json, strlen(json), &parsed);
    if (st != ALINK_OK) {
        snprintf(why, why_size, "--reading %s: %s (the TSL's type and range apply)", identifier,
                 st == ALINK_ERR_BAD_VALUE ? "the value does not fit the property" : "not one JSON value");
        return false;
    }
    copy_field(f, &s_readings, &parsed);
    /* live at once: the post on going online may come before the first TICK refreshes the readings; a
     * writable property starts there and the platform may set it */
    copy_field(f, &s_props, &parsed);
    return true;
}

bool host_thing_event(const char *assignment, char *why, size_t why_size)
{
    char identifier[IDENTIFIER_MAX];
    const char *json = NULL;
    if (!split(assignment, false, identifier, &json)) {
        snprintf(why, why_size, "--event: expected IDENTIFIER or IDENTIFIER={outputs as a JSON object}");
        return false;
    }
    uint32_t index = 0;
    while (index < thing_model.event_count && strcmp(thing_model.events[index].identifier, identifier) != 0) {
        index++;
    }
    if (index == thing_model.event_count) {
        snprintf(why, why_size, "--event: no event of the thing model has that identifier (thing_model.h lists them)");
        return false;
    }
    if (s_event_count == EVENTS_QUEUED) {
        snprintf(why, why_size, "--event: at most %u events wait for the device to be online", EVENTS_QUEUED);
        return false;
    }
    const alink_thing_event_t *e = &thing_model.events[index];
    queued_event_t *queued = &s_events[s_event_count];
    memset(queued, 0, sizeof *queued);
    queued->index = index;
    /* The event's value is an object of exactly its outputs: a struct over the output struct. */
    const alink_thing_field_t value = {.identifier = e->identifier, .type = ALINK_THING_STRUCT,
                                       .members = e->outputs, .member_count = e->output_count,
                                       .size = sizeof queued->output};
    if (json == NULL) {
        fill_default(&value, (unsigned char *)&queued->output);
    } else if (alink_thing_value_parse(&value, json, strlen(json), &queued->output) != ALINK_OK) {
        snprintf(why, why_size, "--event %s: expected a JSON object of exactly its outputs, each in its range",
                 identifier);
        return false;
    }
    s_event_count++;
    return true;
}

/* ---- the core's side ------------------------------------------------------------------------- */

static void applied(void *ctx, uint64_t changed)
{
    (void)ctx;
    thing_apply_properties(&s_props, changed);
}

void host_thing_configure(alink_config_t *config)
{
    config->thing_model = &thing_model;
    config->thing_props = &s_props;
    config->thing_staging = &s_staging;
    config->thing_posted = &s_posted;
    config->thing_payload = s_payload;
    config->thing_payload_size = sizeof s_payload;
    config->thing_input = &s_input;
    config->thing_input_size = sizeof s_input;
    config->thing_output = &s_output;
    config->thing_output_size = sizeof s_output;
    config->thing_post_min_interval_ms = CHANGE_POST_MIN_INTERVAL_MS;
    config->thing_applied = applied;
    config->thing_ctx = NULL;
}

void host_thing_refresh(void)
{
    thing_read_properties(&s_props);
}

void host_thing_post_events(alink_t *core, uint64_t now_ms)
{
    if (s_event_count == 0 || alink_state(core) != ALINK_STATE_ONLINE) {
        return;
    }
    for (unsigned i = 0; i < s_event_count; i++) {
        alink_status_t st = alink_event_post(core, s_events[i].index, &s_events[i].output, now_ms);
        if (st != ALINK_OK) {
            printf("host: event %s not posted: %s\n", thing_model.events[s_events[i].index].identifier,
                   alink_strerror(st));
        }
    }
    s_event_count = 0;
}

static void run_line(const char *line)
{
    char why[160];
    bool ok;
    if (strncmp(line, "reading ", 8) == 0) {
        ok = host_thing_reading(line + 8, why, sizeof why);
    } else if (strncmp(line, "event ", 6) == 0) {
        ok = host_thing_event(line + 6, why, sizeof why);
    } else {
        ok = false;
        snprintf(why, sizeof why, "expected `reading ID=JSON` or `event ID[=JSON]`");
    }
    if (!ok) {
        printf("host: stdin: %s\n", why);
    }
}

bool host_thing_read_stdin(void)
{
    struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
    while (poll(&in, 1, 0) == 1 && (in.revents & (POLLIN | POLLHUP)) != 0) {
        char chunk[256];
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false; /* closed: nothing more will come */
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\r') {
                continue;
            }
            if (chunk[i] != '\n') {
                if (s_line_len < LINE_MAX_BYTES) {
                    s_line[s_line_len++] = chunk[i];
                } else {
                    s_line_too_long = true;
                }
                continue;
            }
            s_line[s_line_len] = '\0';
            if (s_line_too_long) {
                printf("host: stdin: line longer than %u bytes ignored\n", LINE_MAX_BYTES);
            } else if (s_line_len > 0) {
                run_line(s_line);
            }
            s_line_len = 0;
            s_line_too_long = false;
        }
    }
    return true;
}
