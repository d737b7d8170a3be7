/* libFuzzer target of the thing-model engine over the every-type test model (tests/tsl/every_type.json,
 * rendered by bench/firmware_fuzz.sh): byte 0 picks a property set (0 mod 4), one value for property
 * byte0/4 (2 mod 4, the shells' alink_thing_value_parse) or a service call (odd), the rest is the payload.
 * After each accepted request or value the post, the values object and the reply must still serialize. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "thing_model.h"

void thing_read_properties(thing_properties_t *props) { (void)props; }
void thing_apply_properties(const thing_properties_t *props, uint64_t changed) { (void)props, (void)changed; }
int thing_service_Reboot(const thing_service_Reboot_input_t *in, thing_service_Reboot_output_t *out)
{
    (void)out;
    return in->DelayS <= 60 ? 200 : 460;
}
int thing_service_Measure(const thing_service_Measure_input_t *in, thing_service_Measure_output_t *out)
{
    out->Reading = (float)in->Channel;
    return 200;
}

static thing_properties_t live, staging;
static char out[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const char *payload = (const char *)data + 1;
    size_t len = size - 1;
    alink_thing_result_t result;
    size_t written = 0;
    if ((data[0] & 3u) == 2u) {
        uint32_t index = (uint32_t)(data[0] >> 2) % THING_PROPERTY_COUNT;
        staging = live;
        if (alink_thing_value_parse(&thing_model.properties[index], payload, len, &staging) == ALINK_OK &&
            alink_thing_values_json(thing_model.properties, THING_PROPERTY_COUNT, UINT64_C(1) << index, &staging,
                                    out, sizeof out, &written) != ALINK_OK) {
            __builtin_trap(); /* every accepted value must serialize back */
        }
        return 0;
    }
    if ((data[0] & 1u) == 0) {
        if (alink_thing_property_set(&thing_model, &live, &staging, payload, len, &result) == ALINK_OK) {
            (void)alink_thing_reply(&result, NULL, 0, NULL, out, sizeof out, &written);
            if (alink_thing_property_post(&thing_model, &live, result.changed, 1, 0, out, sizeof out, &written) !=
                ALINK_OK) {
                __builtin_trap(); /* every accepted value must serialize back */
            }
        }
        return 0;
    }
    uint32_t index = (uint32_t)(data[0] >> 1) % THING_SERVICE_COUNT;
    union {
        thing_service_Reboot_input_t reboot;
        thing_service_Measure_input_t measure;
    } input;
    union {
        thing_service_Reboot_output_t reboot;
        thing_service_Measure_output_t measure;
    } output;
    if (alink_thing_service_call(&thing_model, index, payload, len, &input, &output, &result) == ALINK_OK) {
        const alink_thing_service_t *s = &thing_model.services[index];
        (void)alink_thing_reply(&result, s->outputs, s->output_count, &output, out, sizeof out, &written);
    }
    return 0;
}
