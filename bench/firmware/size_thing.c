/* Driver of the thing-model engine's size measurement (bench/firmware_size.py): calls every public
 * engine function over either the example product's rendered model (WITH_EXAMPLE_MODEL) or a
 * one-property table, and link-only cJSON stand-ins. Not measured itself. */
#include <stddef.h>
#include <stdint.h>

#include "alink_thing.h"
#include "cJSON.h"

#ifdef WITH_EXAMPLE_MODEL
#include "thing_model.h"
void thing_read_properties(thing_properties_t *props) { props->CurrentTemperature = 21.5f; }
void thing_apply_properties(const thing_properties_t *props, uint64_t changed) { (void)props, (void)changed; }
int thing_service_Blink(const thing_service_Blink_input_t *in, thing_service_Blink_output_t *out)
{
    (void)out;
    return in->times > 0 ? 200 : 460;
}
#define MODEL thing_model
typedef thing_properties_t props_t;
#else
typedef struct {
    int32_t level;
} props_t;
static const alink_thing_field_t fields[] = {{.identifier = "Level", .type = ALINK_THING_INT, .access = ALINK_THING_RW,
                                              .max = 10, .size = sizeof(int32_t)}};
static const alink_thing_model_t bare_model = {fields, 1, sizeof(props_t), NULL, 0, NULL, 0};
#define MODEL bare_model
#endif

cJSON *cJSON_ParseWithLength(const char *value, size_t len)
{
    return (cJSON *)(uintptr_t)(value[0] + len);
}
void cJSON_Delete(cJSON *item) { (void)item; }
cJSON *cJSON_GetObjectItemCaseSensitive(const cJSON *const object, const char *const string)
{
    return object && string ? object->child : NULL;
}
int cJSON_GetArraySize(const cJSON *array) { return array ? 1 : 0; }
cJSON_bool cJSON_IsString(const cJSON *const item) { return item != NULL && item->type == cJSON_String; }
cJSON_bool cJSON_IsObject(const cJSON *const item) { return item != NULL && item->type == cJSON_Object; }
cJSON_bool cJSON_IsArray(const cJSON *const item) { return item != NULL && item->type == cJSON_Array; }
cJSON_bool cJSON_IsNumber(const cJSON *const item) { return item != NULL && item->type == cJSON_Number; }

static props_t live, staging;
static char out[512];

int main(void)
{
    alink_thing_result_t result;
    size_t len = 0;
    int rc = (int)alink_thing_model_check(&MODEL);
    rc += (int)alink_thing_property_set(&MODEL, &live, &staging, out, sizeof out, &result);
    rc += (int)alink_thing_property_post(&MODEL, &live, 0, 1, 0, out, sizeof out, &len);
    rc += alink_thing_property_index(&MODEL, out) + alink_thing_service_index(&MODEL, out, len);
    rc += (int)alink_thing_event_post(&MODEL, 0, &live, 2, 3, out, sizeof out, &len);
    rc += (int)alink_thing_service_call(&MODEL, 0, out, len, &live, &staging, &result);
    rc += (int)alink_thing_reply(&result, NULL, 0, NULL, out, sizeof out, &len);
    return rc;
}
