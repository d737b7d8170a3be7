/*
 * The thing-model engine: Alink property set / post, events and services, generic over a const
 * descriptor table that `provision tsl render` generates from the product's TSL (or a test writes
 * by hand). Values live in the application's typed structs; a descriptor says where (offset) and
 * what (type, range, step, length, enum values, struct members, array size) each value is.
 *
 * Payloads (Aliyun IoT Platform, "Alink protocol" > "Device properties, events and services"):
 *   set:    {"id":"8","version":"1.0","params":{"Brightness":40},"method":"thing.service.property.set"}
 *   reply:  {"id":"8","code":200|460,"data":{..},"message":"success"|"<reason>: <Identifier>","version":"1.0"}
 *   post:   {"id":"7","version":"1.0","params":{"P":v | "P":{"value":v,"time":ms}},
 *            "method":"thing.event.property.post"}
 *   event:  {"id":"9","version":"1.0","params":{"value":{..},"time":ms},"method":"thing.event.<id>.post"}
 *   service request: {"id":"10","version":"1.0","params":{inputs},"method":"thing.service.<id>"}
 *
 * Value rules (TSL "dataType", Aliyun "TSL parameters"): int is an integral JSON number in
 * [min,max] and on min + k*step; float/double a JSON number in [min,max] and, with a step, within
 * 1e-6 steps of min + k*step; bool a number 0 or 1; enum one of the listed integers; text a string
 * of at most `length` bytes; date a string of 1..13 decimal digits (UTC ms); struct an object with
 * exactly its members; array a JSON array of at most `array_size` items. Anything else is refused.
 *
 * Caller-owned memory throughout: the engine writes into the caller's structs and buffers and keeps
 * no state. Inbound parsing uses cJSON after a size and depth check (as alink_json.c does).
 */
#ifndef ALINK_THING_H
#define ALINK_THING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alink_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ALINK_THING_PROPERTIES_MAX 64u /* one bit each in a changed mask */
#define ALINK_THING_DEPTH_MAX 6u       /* {"params":{"A":[{"m":1}]}} is 4 */
#define ALINK_THING_MESSAGE_MAX 96u    /* reply "message", NUL included */

typedef enum {
    ALINK_THING_INT = 0, /* int32_t */
    ALINK_THING_FLOAT,   /* float */
    ALINK_THING_DOUBLE,  /* double */
    ALINK_THING_BOOL,    /* bool */
    ALINK_THING_ENUM,    /* int32_t */
    ALINK_THING_TEXT,    /* char[length + 1], NUL-terminated, zero-filled after the NUL */
    ALINK_THING_DATE,    /* uint64_t, UTC ms */
    ALINK_THING_STRUCT,  /* a struct whose members are described by .members */
    ALINK_THING_ARRAY,   /* uint32_t count at .offset, items at .items_offset, .members[0] the item */
} alink_thing_type_t;

typedef enum {
    ALINK_THING_R = 0,
    ALINK_THING_RW,
} alink_thing_access_t;

typedef struct alink_thing_field {
    const char *identifier;
    alink_thing_type_t type;
    alink_thing_access_t access;
    double min, max;       /* int, float, double */
    double step;           /* int, float, double; 0: any value in range */
    uint32_t length;       /* text: most bytes, NUL excluded */
    const int32_t *enum_values; /* enum and bool: the accepted integers */
    uint32_t enum_count;
    const struct alink_thing_field *members; /* struct: members; array: the item (offset 0) */
    uint32_t member_count;
    uint32_t array_size;   /* array: most items */
    size_t offset;         /* of the value within its parent (struct, property set, item) */
    size_t size;           /* bytes of the value (an array: through its last item) */
    size_t items_offset;   /* array: of items[0] within the parent */
    size_t item_stride;    /* array: sizeof one item */
} alink_thing_field_t;

typedef struct {
    const char *identifier;
    const alink_thing_field_t *outputs;
    uint32_t output_count;
} alink_thing_event_t;

/* Runs a service: returns 200 on success or an Alink code the reply carries. */
typedef int (*alink_thing_service_fn)(const void *input, void *output);

typedef struct {
    const char *identifier;
    bool sync; /* callType "sync": invoked through RRPC */
    const alink_thing_field_t *inputs;
    uint32_t input_count;
    size_t input_size;
    const alink_thing_field_t *outputs;
    uint32_t output_count;
    size_t output_size;
    alink_thing_service_fn run;
} alink_thing_service_t;

typedef struct {
    const alink_thing_field_t *properties;
    uint32_t property_count;
    size_t properties_size; /* sizeof the application's property struct */
    const alink_thing_event_t *events;
    uint32_t event_count;
    const alink_thing_service_t *services;
    uint32_t service_count;
} alink_thing_model_t;

/* What a property set or a service call came to: the reply to send. */
typedef struct {
    char id[11];      /* the request's id ("" when it had none: no reply can be sent) */
    int code;         /* 200, or 460 for a bad parameter */
    char message[ALINK_THING_MESSAGE_MAX]; /* "success", or the reason naming the identifier */
    uint64_t changed; /* property set: bit i set when property i changed */
} alink_thing_result_t;

/* Whether the table is consistent (counts, offsets inside sizes, ranges); ALINK_ERR_CONFIG if not. */
alink_status_t alink_thing_model_check(const alink_thing_model_t *model);

/*
 * Applies a property set all-or-nothing: every value is checked into `staging` (a buffer of
 * model->properties_size bytes, caller-owned) starting from a copy of `live`; only when all pass is
 * `staging` copied to `live`. result->code is 200 or 460 (message "unknown property", "read-only:
 * <id>", "bad value: <id>", "no params"). Returns ALINK_OK when a reply should be sent (either
 * code), an error when the payload had no usable id (nothing to answer).
 */
alink_status_t alink_thing_property_set(const alink_thing_model_t *model, void *live, void *staging,
                                        const char *payload, size_t len, alink_thing_result_t *result);

/* Which index property `identifier` has; -1 if none. */
int alink_thing_property_index(const alink_thing_model_t *model, const char *identifier);

/*
 * The property post of the properties whose bit is set in `mask` (all when mask is 0), from the
 * application's struct. time_ms 0: bare values; otherwise each value as {"value":v,"time":time_ms}.
 * ALINK_ERR_BUFFER when it does not fit `out` (nothing cut short: out is "").
 */
alink_status_t alink_thing_property_post(const alink_thing_model_t *model, const void *props, uint64_t mask,
                                         uint32_t id, uint64_t time_ms, char *out, size_t out_size, size_t *len);

/* The post of event `index` with its output values from `output` (the event's typed struct). */
alink_status_t alink_thing_event_post(const alink_thing_model_t *model, uint32_t index, const void *output,
                                      uint32_t id, uint64_t time_ms, char *out, size_t out_size, size_t *len);

/* Which index service `identifier` (identifier_len bytes, no NUL needed) has; -1 if none. */
int alink_thing_service_index(const alink_thing_model_t *model, const char *identifier, size_t identifier_len);

/* The service a request's "method" (thing.service.<Identifier>) names, for RRPC requests; -1 if none. */
int alink_thing_service_from_method(const alink_thing_model_t *model, const char *payload, size_t len);

/*
 * Checks a service request's params into `input` (the service's input struct, zeroed first; every
 * input required) and, when valid, runs the service into `output` (zeroed first). result->code is
 * the service's code, or 460 with "bad value: <id>" / "missing: <id>" / "unknown parameter".
 */
alink_status_t alink_thing_service_call(const alink_thing_model_t *model, uint32_t index, const char *payload,
                                        size_t len, void *input, void *output, alink_thing_result_t *result);

/*
 * One value from its JSON text (len bytes, e.g. `21.5`, `"abc"`, `{"Lat":1,"Lon":2}`), checked as a set
 * checks it, into base + field->offset (base: the struct holding the field). ALINK_ERR_NOT_JSON when the
 * text is not one JSON value, ALINK_ERR_BAD_VALUE when the value does not fit the descriptor (base may then
 * be partly written: parse into a copy). For shells and tests that take values from outside the protocol.
 */
alink_status_t alink_thing_value_parse(const alink_thing_field_t *field, const char *json, size_t len, void *base);

/*
 * The JSON object {"Identifier":value,...} of the fields whose bit i is set in `mask` (all when mask is 0),
 * from `base`. ALINK_ERR_BUFFER when it does not fit (out is then "").
 */
alink_status_t alink_thing_values_json(const alink_thing_field_t *fields, uint32_t count, uint64_t mask,
                                       const void *base, char *out, size_t out_size, size_t *len);

/*
 * The reply to a set or a service call. `outputs`/`output` (may be NULL/0) fill "data" on success.
 */
alink_status_t alink_thing_reply(const alink_thing_result_t *result, const alink_thing_field_t *outputs,
                                 uint32_t output_count, const void *output, char *out, size_t out_size,
                                 size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_THING_H */
