/* Link-only cJSON stand-ins for what the thing-model engine calls beyond size_stubs.c's set, so that
 * the core's RV32 link (aliyun_link.c reaches alink_thing.c) resolves. Not measured. */
#include <stddef.h>

#include "cJSON.h"

cJSON *cJSON_ParseWithLength(const char *value, size_t len)
{
    const char *end = NULL;
    return cJSON_ParseWithLengthOpts(value, len, &end, 0);
}

int cJSON_GetArraySize(const cJSON *array)
{
    return array && array->child ? 1 : 0;
}

cJSON_bool cJSON_IsArray(const cJSON *const item)
{
    return item != NULL && item->type == cJSON_Array;
}
