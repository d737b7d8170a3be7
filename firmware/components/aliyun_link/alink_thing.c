#include "alink_thing.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alink_json.h"
#include "cJSON.h"

/* Within this many steps of a grid point a float or double counts as on the grid: 0.1 is no
 * binary fraction, so 23.3 is never exactly min + k*0.1. The Python validator uses the same rule. */
#define STEP_TOLERANCE 1e-6
#define DATE_DIGITS_MAX 13u

/* ---- writing JSON into a caller buffer ------------------------------------------------------ */

typedef struct {
    char *out;
    size_t size;
    size_t pos;
    bool failed;
} writer_t;

static void put(writer_t *w, const char *fmt, ...)
{
    if (w->failed) {
        return;
    }
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(w->out + w->pos, w->size - w->pos, fmt, args);
    va_end(args);
    if (n < 0 || (size_t)n >= w->size - w->pos) {
        w->failed = true;
        return;
    }
    w->pos += (size_t)n;
}

/* A JSON string: quote, backslash and control bytes escaped; other bytes (UTF-8) as they are. */
static void put_string(writer_t *w, const char *s, size_t max_len)
{
    put(w, "\"");
    for (size_t i = 0; i < max_len && s[i] != '\0' && !w->failed; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            put(w, "\\%c", c);
        } else if (c < 0x20) {
            put(w, "\\u%04x", c);
        } else {
            put(w, "%c", c);
        }
    }
    put(w, "\"");
}

static alink_status_t finish(writer_t *w, size_t *len)
{
    if (w->failed) {
        if (w->size > 0) {
            w->out[0] = '\0';
        }
        return ALINK_ERR_BUFFER;
    }
    if (len) {
        *len = w->pos;
    }
    return ALINK_OK;
}

static void put_fields(writer_t *w, const alink_thing_field_t *fields, uint32_t count, const unsigned char *base);

static void put_value(writer_t *w, const alink_thing_field_t *f, const unsigned char *base)
{
    const unsigned char *at = base + f->offset;
    switch (f->type) {
    case ALINK_THING_INT:
    case ALINK_THING_ENUM: {
        int32_t v;
        memcpy(&v, at, sizeof v);
        put(w, "%" PRId32, v);
        break;
    }
    case ALINK_THING_FLOAT: {
        float v;
        memcpy(&v, at, sizeof v);
        if (!isfinite(v)) {
            w->failed = true; /* JSON has no NaN: an application bug, not a value to send */
            return;
        }
        put(w, "%.7g", (double)v);
        break;
    }
    case ALINK_THING_DOUBLE: {
        double v;
        memcpy(&v, at, sizeof v);
        if (!isfinite(v)) {
            w->failed = true;
            return;
        }
        put(w, "%.15g", v);
        break;
    }
    case ALINK_THING_BOOL: {
        bool v;
        memcpy(&v, at, sizeof v);
        put(w, "%d", v ? 1 : 0);
        break;
    }
    case ALINK_THING_TEXT:
        put_string(w, (const char *)at, f->length);
        break;
    case ALINK_THING_DATE: {
        uint64_t v;
        memcpy(&v, at, sizeof v);
        put(w, "\"%" PRIu64 "\"", v);
        break;
    }
    case ALINK_THING_STRUCT:
        put(w, "{");
        put_fields(w, f->members, f->member_count, at);
        put(w, "}");
        break;
    case ALINK_THING_ARRAY: {
        uint32_t count;
        memcpy(&count, at, sizeof count);
        if (count > f->array_size) {
            count = f->array_size;
        }
        put(w, "[");
        for (uint32_t i = 0; i < count; i++) {
            put(w, i ? "," : "");
            put_value(w, &f->members[0], base + f->items_offset + (size_t)i * f->item_stride);
        }
        put(w, "]");
        break;
    }
    }
}

static void put_fields(writer_t *w, const alink_thing_field_t *fields, uint32_t count, const unsigned char *base)
{
    for (uint32_t i = 0; i < count; i++) {
        put(w, i ? "," : "");
        put_string(w, fields[i].identifier, SIZE_MAX);
        put(w, ":");
        put_value(w, &fields[i], base);
    }
}

/* ---- checking inbound values ---------------------------------------------------------------- */

static bool integral(double d)
{
    return isfinite(d) && d == floor(d);
}

static bool number_ok(const alink_thing_field_t *f, double d)
{
    if (!isfinite(d) || d < f->min || d > f->max) {
        return false;
    }
    if (f->step > 0) {
        double q = (d - f->min) / f->step;
        if (fabs(q - round(q)) > STEP_TOLERANCE) {
            return false;
        }
    }
    return true;
}

static const alink_thing_field_t *find_field(const alink_thing_field_t *fields, uint32_t count, const char *name,
                                             uint32_t *index)
{
    for (uint32_t i = 0; i < count; i++) {
        if (strcmp(fields[i].identifier, name) == 0) {
            *index = i;
            return &fields[i];
        }
    }
    return NULL;
}

/* Checks `v` against `f` and writes it into base + f->offset; false (base possibly half-written:
 * callers write into a staging copy) when it does not fit. */
static bool take_value(const alink_thing_field_t *f, const cJSON *v, unsigned char *base)
{
    unsigned char *at = base + f->offset;
    switch (f->type) {
    case ALINK_THING_INT: {
        if (!cJSON_IsNumber(v) || !integral(v->valuedouble) || !number_ok(f, v->valuedouble)) {
            return false;
        }
        int32_t x = (int32_t)v->valuedouble;
        memcpy(at, &x, sizeof x);
        return true;
    }
    case ALINK_THING_FLOAT: {
        if (!cJSON_IsNumber(v) || !number_ok(f, v->valuedouble)) {
            return false;
        }
        float x = (float)v->valuedouble;
        memcpy(at, &x, sizeof x);
        return true;
    }
    case ALINK_THING_DOUBLE: {
        if (!cJSON_IsNumber(v) || !number_ok(f, v->valuedouble)) {
            return false;
        }
        memcpy(at, &v->valuedouble, sizeof v->valuedouble);
        return true;
    }
    case ALINK_THING_BOOL: {
        if (!cJSON_IsNumber(v) || (v->valuedouble != 0 && v->valuedouble != 1)) {
            return false;
        }
        bool x = v->valuedouble == 1;
        memcpy(at, &x, sizeof x);
        return true;
    }
    case ALINK_THING_ENUM: {
        if (!cJSON_IsNumber(v) || !integral(v->valuedouble)) {
            return false;
        }
        for (uint32_t i = 0; i < f->enum_count; i++) {
            if ((double)f->enum_values[i] == v->valuedouble) {
                memcpy(at, &f->enum_values[i], sizeof f->enum_values[i]);
                return true;
            }
        }
        return false;
    }
    case ALINK_THING_TEXT: {
        if (!cJSON_IsString(v) || v->valuestring == NULL) {
            return false;
        }
        size_t n = strlen(v->valuestring);
        if (n > f->length) {
            return false;
        }
        memset(at, 0, (size_t)f->length + 1u);
        memcpy(at, v->valuestring, n);
        return true;
    }
    case ALINK_THING_DATE: {
        if (!cJSON_IsString(v) || v->valuestring == NULL) {
            return false;
        }
        const char *s = v->valuestring;
        size_t n = strlen(s);
        if (n == 0 || n > DATE_DIGITS_MAX || s[strspn(s, "0123456789")] != '\0') {
            return false;
        }
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++) {
            x = x * 10u + (uint64_t)(s[i] - '0');
        }
        memcpy(at, &x, sizeof x);
        return true;
    }
    case ALINK_THING_STRUCT: {
        if (!cJSON_IsObject(v) || (uint32_t)cJSON_GetArraySize(v) != f->member_count) {
            return false;
        }
        for (uint32_t i = 0; i < f->member_count; i++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, f->members[i].identifier);
            if (m == NULL || !take_value(&f->members[i], m, at)) {
                return false;
            }
        }
        return true;
    }
    case ALINK_THING_ARRAY: {
        if (!cJSON_IsArray(v)) {
            return false;
        }
        int size = cJSON_GetArraySize(v);
        if (size < 0 || (uint32_t)size > f->array_size) {
            return false;
        }
        memset(base + f->items_offset, 0, (size_t)f->array_size * f->item_stride);
        uint32_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, v)
        {
            if (!take_value(&f->members[0], item, base + f->items_offset + (size_t)i * f->item_stride)) {
                return false;
            }
            i++;
        }
        memcpy(at, &i, sizeof i);
        return true;
    }
    }
    return false;
}

/* ---- parsing a request ---------------------------------------------------------------------- */


/* Parses the request and fills result->id; *params is the "params" object or NULL. */
static alink_status_t open_request(const char *payload, size_t len, cJSON **root, const cJSON **params,
                                   alink_thing_result_t *result)
{
    memset(result, 0, sizeof *result);
    alink_status_t st = alink_json_check_shape(payload, len, ALINK_INBOUND_MAX, ALINK_THING_DEPTH_MAX);
    if (st != ALINK_OK) {
        return st;
    }
    *root = cJSON_ParseWithLength(payload, len);
    if (*root == NULL) {
        return ALINK_ERR_NOT_JSON;
    }
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return ALINK_ERR_NOT_JSON;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(*root, "id");
    if (!cJSON_IsString(id) || id->valuestring == NULL) {
        cJSON_Delete(*root);
        *root = NULL;
        return ALINK_ERR_NO_ID;
    }
    size_t n = strlen(id->valuestring);
    if (n == 0 || n > ALINK_ID_MAX || id->valuestring[strspn(id->valuestring, "0123456789")] != '\0') {
        cJSON_Delete(*root);
        *root = NULL;
        return ALINK_ERR_BAD_ID;
    }
    memcpy(result->id, id->valuestring, n + 1);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(*root, "params");
    *params = cJSON_IsObject(p) ? p : NULL;
    return ALINK_OK;
}

static void refuse(alink_thing_result_t *result, const char *reason, const char *identifier)
{
    result->code = ALINK_CODE_BAD_PARAMS;
    if (identifier) {
        snprintf(result->message, sizeof result->message, "%s: %s", reason, identifier);
    } else {
        snprintf(result->message, sizeof result->message, "%s", reason);
    }
}

static void succeed(alink_thing_result_t *result)
{
    result->code = ALINK_CODE_OK;
    snprintf(result->message, sizeof result->message, "success");
}

/* ---- public ---------------------------------------------------------------------------------- */

static bool fields_ok(const alink_thing_field_t *fields, uint32_t count, size_t parent_size)
{
    if (count > 0 && fields == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < count; i++) {
        const alink_thing_field_t *f = &fields[i];
        if (f->identifier == NULL || f->offset > parent_size || f->size > parent_size - f->offset) {
            return false;
        }
        switch (f->type) {
        case ALINK_THING_INT:
        case ALINK_THING_FLOAT:
        case ALINK_THING_DOUBLE:
            if (!(f->min <= f->max) || f->step < 0) {
                return false;
            }
            break;
        case ALINK_THING_ENUM:
            if (f->enum_count == 0 || f->enum_values == NULL) {
                return false;
            }
            break;
        case ALINK_THING_TEXT:
            if (f->size < (size_t)f->length + 1u) {
                return false;
            }
            break;
        case ALINK_THING_STRUCT:
            if (f->member_count == 0 || !fields_ok(f->members, f->member_count, f->size)) {
                return false;
            }
            break;
        case ALINK_THING_ARRAY:
            if (f->member_count != 1 || f->array_size == 0 || f->item_stride == 0 ||
                f->items_offset > parent_size ||
                f->array_size > (parent_size - f->items_offset) / f->item_stride ||
                !fields_ok(f->members, 1, f->item_stride)) {
                return false;
            }
            break;
        case ALINK_THING_BOOL:
        case ALINK_THING_DATE:
            break;
        default:
            return false;
        }
    }
    return true;
}

alink_status_t alink_thing_model_check(const alink_thing_model_t *model)
{
    if (model == NULL) {
        return ALINK_ERR_ARG;
    }
    if (model->property_count > ALINK_THING_PROPERTIES_MAX ||
        !fields_ok(model->properties, model->property_count, model->properties_size) ||
        (model->event_count > 0 && model->events == NULL) ||
        (model->service_count > 0 && model->services == NULL)) {
        return ALINK_ERR_CONFIG;
    }
    for (uint32_t i = 0; i < model->event_count; i++) {
        if (model->events[i].identifier == NULL ||
            !fields_ok(model->events[i].outputs, model->events[i].output_count, SIZE_MAX)) {
            return ALINK_ERR_CONFIG;
        }
    }
    for (uint32_t i = 0; i < model->service_count; i++) {
        const alink_thing_service_t *s = &model->services[i];
        if (s->identifier == NULL || s->run == NULL || s->input_count > 64u ||
            !fields_ok(s->inputs, s->input_count, s->input_size) ||
            !fields_ok(s->outputs, s->output_count, s->output_size)) {
            return ALINK_ERR_CONFIG;
        }
    }
    return ALINK_OK;
}

int alink_thing_property_index(const alink_thing_model_t *model, const char *identifier)
{
    uint32_t index;
    if (model == NULL || identifier == NULL ||
        find_field(model->properties, model->property_count, identifier, &index) == NULL) {
        return -1;
    }
    return (int)index;
}

alink_status_t alink_thing_property_set(const alink_thing_model_t *model, void *live, void *staging,
                                        const char *payload, size_t len, alink_thing_result_t *result)
{
    if (model == NULL || live == NULL || staging == NULL || payload == NULL || result == NULL) {
        return ALINK_ERR_ARG;
    }
    cJSON *root = NULL;
    const cJSON *params = NULL;
    alink_status_t st = open_request(payload, len, &root, &params, result);
    if (st != ALINK_OK) {
        return st;
    }
    if (params == NULL) {
        refuse(result, "no params", NULL);
        cJSON_Delete(root);
        return ALINK_OK;
    }
    memcpy(staging, live, model->properties_size);
    const cJSON *item;
    bool ok = true;
    cJSON_ArrayForEach(item, params)
    {
        uint32_t index;
        const alink_thing_field_t *f = find_field(model->properties, model->property_count, item->string, &index);
        if (f == NULL) {
            refuse(result, "unknown property", NULL); /* the name is the sender's: not echoed */
        } else if (f->access != ALINK_THING_RW) {
            refuse(result, "read-only", f->identifier);
        } else if (!take_value(f, item, staging)) {
            refuse(result, "bad value", f->identifier);
        } else {
            continue;
        }
        ok = false;
        break;
    }
    cJSON_Delete(root);
    if (!ok) {
        return ALINK_OK;
    }
    const unsigned char *before = live;
    const unsigned char *after = staging;
    for (uint32_t i = 0; i < model->property_count; i++) {
        const alink_thing_field_t *f = &model->properties[i];
        if (memcmp(before + f->offset, after + f->offset, f->size) != 0) {
            result->changed |= UINT64_C(1) << i;
        }
    }
    memcpy(live, staging, model->properties_size);
    succeed(result);
    return ALINK_OK;
}

alink_status_t alink_thing_property_post(const alink_thing_model_t *model, const void *props, uint64_t mask,
                                         uint32_t id, uint64_t time_ms, char *out, size_t out_size, size_t *len)
{
    if (model == NULL || props == NULL || out == NULL || out_size == 0) {
        return ALINK_ERR_ARG;
    }
    writer_t w = {out, out_size, 0, false};
    put(&w, "{\"id\":\"%" PRIu32 "\",\"version\":\"1.0\",\"params\":{", id);
    bool first = true;
    for (uint32_t i = 0; i < model->property_count; i++) {
        if (mask != 0 && (mask & (UINT64_C(1) << i)) == 0) {
            continue;
        }
        put(&w, first ? "" : ",");
        first = false;
        put_string(&w, model->properties[i].identifier, SIZE_MAX);
        put(&w, ":");
        if (time_ms != 0) {
            put(&w, "{\"value\":");
        }
        put_value(&w, &model->properties[i], props);
        if (time_ms != 0) {
            put(&w, ",\"time\":%" PRIu64 "}", time_ms);
        }
    }
    put(&w, "},\"method\":\"thing.event.property.post\"}");
    return finish(&w, len);
}

alink_status_t alink_thing_event_post(const alink_thing_model_t *model, uint32_t index, const void *output,
                                      uint32_t id, uint64_t time_ms, char *out, size_t out_size, size_t *len)
{
    if (model == NULL || index >= model->event_count || out == NULL || out_size == 0 ||
        (output == NULL && model->events[index].output_count > 0)) {
        return ALINK_ERR_ARG;
    }
    const alink_thing_event_t *e = &model->events[index];
    writer_t w = {out, out_size, 0, false};
    put(&w, "{\"id\":\"%" PRIu32 "\",\"version\":\"1.0\",\"params\":{\"value\":{", id);
    put_fields(&w, e->outputs, e->output_count, output);
    put(&w, "},\"time\":%" PRIu64 "},\"method\":\"thing.event.", time_ms);
    put(&w, "%s.post\"}", e->identifier);
    return finish(&w, len);
}

int alink_thing_service_index(const alink_thing_model_t *model, const char *identifier, size_t identifier_len)
{
    if (model == NULL || identifier == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < model->service_count; i++) {
        const char *name = model->services[i].identifier;
        if (strlen(name) == identifier_len && memcmp(name, identifier, identifier_len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int alink_thing_service_from_method(const alink_thing_model_t *model, const char *payload, size_t len)
{
    static const char prefix[] = "thing.service.";
    if (model == NULL || payload == NULL ||
        alink_json_check_shape(payload, len, ALINK_INBOUND_MAX, ALINK_THING_DEPTH_MAX) != ALINK_OK) {
        return -1;
    }
    cJSON *root = cJSON_ParseWithLength(payload, len);
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    int index = -1;
    if (cJSON_IsString(method) && method->valuestring != NULL &&
        strncmp(method->valuestring, prefix, sizeof prefix - 1) == 0) {
        const char *name = method->valuestring + sizeof prefix - 1;
        index = alink_thing_service_index(model, name, strlen(name));
    }
    cJSON_Delete(root);
    return index;
}

alink_status_t alink_thing_service_call(const alink_thing_model_t *model, uint32_t index, const char *payload,
                                        size_t len, void *input, void *output, alink_thing_result_t *result)
{
    if (model == NULL || index >= model->service_count || payload == NULL || result == NULL ||
        (input == NULL && model->services[index].input_size > 0) ||
        (output == NULL && model->services[index].output_size > 0)) {
        return ALINK_ERR_ARG;
    }
    const alink_thing_service_t *s = &model->services[index];
    cJSON *root = NULL;
    const cJSON *params = NULL;
    alink_status_t st = open_request(payload, len, &root, &params, result);
    if (st != ALINK_OK) {
        return st;
    }
    if (params == NULL) {
        refuse(result, "no params", NULL);
        cJSON_Delete(root);
        return ALINK_OK;
    }
    if (s->input_size > 0) {
        memset(input, 0, s->input_size);
    }
    uint64_t seen = 0;
    bool ok = true;
    const cJSON *item;
    cJSON_ArrayForEach(item, params)
    {
        uint32_t i;
        const alink_thing_field_t *f = find_field(s->inputs, s->input_count, item->string, &i);
        if (f == NULL) {
            refuse(result, "unknown parameter", NULL);
        } else if (!take_value(f, item, input)) {
            refuse(result, "bad value", f->identifier);
        } else {
            seen |= UINT64_C(1) << i;
            continue;
        }
        ok = false;
        break;
    }
    cJSON_Delete(root);
    for (uint32_t i = 0; ok && i < s->input_count; i++) {
        if ((seen & (UINT64_C(1) << i)) == 0) {
            refuse(result, "missing", s->inputs[i].identifier);
            ok = false;
        }
    }
    if (!ok) {
        return ALINK_OK;
    }
    if (s->output_size > 0) {
        memset(output, 0, s->output_size);
    }
    result->code = s->run(input, output);
    if (result->code == ALINK_CODE_OK) {
        succeed(result);
    } else {
        snprintf(result->message, sizeof result->message, "service failed: %s", s->identifier);
    }
    return ALINK_OK;
}

alink_status_t alink_thing_reply(const alink_thing_result_t *result, const alink_thing_field_t *outputs,
                                 uint32_t output_count, const void *output, char *out, size_t out_size,
                                 size_t *len)
{
    if (result == NULL || out == NULL || out_size == 0 || (output_count > 0 && (outputs == NULL || output == NULL))) {
        return ALINK_ERR_ARG;
    }
    size_t n = strlen(result->id);
    if (n == 0 || result->id[strspn(result->id, "0123456789")] != '\0') {
        return ALINK_ERR_BAD_ID; /* an id is echoed into JSON: only digits may pass */
    }
    writer_t w = {out, out_size, 0, false};
    put(&w, "{\"id\":\"%s\",\"code\":%d,\"data\":{", result->id, result->code);
    if (result->code == ALINK_CODE_OK) {
        put_fields(&w, outputs, output_count, output);
    }
    put(&w, "},\"message\":");
    put_string(&w, result->message, sizeof result->message);
    put(&w, ",\"version\":\"1.0\"}");
    return finish(&w, len);
}

alink_status_t alink_thing_value_parse(const alink_thing_field_t *field, const char *json, size_t len, void *base)
{
    if (field == NULL || json == NULL || base == NULL) {
        return ALINK_ERR_ARG;
    }
    alink_status_t st = alink_json_check_shape(json, len, ALINK_INBOUND_MAX, ALINK_THING_DEPTH_MAX);
    if (st != ALINK_OK) {
        return st;
    }
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(json, len, &end, false);
    while (value != NULL && end < json + len && strchr(" \t\r\n", *end) != NULL && *end != '\0') {
        end++;
    }
    if (value == NULL || end != json + len) { /* "21.5x" is not a value followed by noise */
        cJSON_Delete(value);
        return ALINK_ERR_NOT_JSON;
    }
    bool ok = take_value(field, value, base);
    cJSON_Delete(value);
    return ok ? ALINK_OK : ALINK_ERR_BAD_VALUE;
}

alink_status_t alink_thing_values_json(const alink_thing_field_t *fields, uint32_t count, uint64_t mask,
                                       const void *base, char *out, size_t out_size, size_t *len)
{
    if ((count > 0 && (fields == NULL || base == NULL)) || out == NULL || out_size == 0) {
        return ALINK_ERR_ARG;
    }
    writer_t w = {out, out_size, 0, false};
    bool first = true;
    put(&w, "{");
    for (uint32_t i = 0; i < count; i++) {
        if (mask != 0 && (i >= 64u || (mask & (UINT64_C(1) << i)) == 0)) {
            continue;
        }
        put(&w, first ? "" : ",");
        first = false;
        put_string(&w, fields[i].identifier, SIZE_MAX);
        put(&w, ":");
        put_value(&w, &fields[i], base);
    }
    put(&w, "}");
    return finish(&w, len);
}
