/*
 * Drives the engine over the model rendered from tests/tsl/every_type.json: one request per stdin
 * line, "set <json>" or "call <service> <json>", one answer line per request on stdout:
 *   <code> <message> <changed mask in hex>      or      error <alink status>
 * Built and run by tests/tsl (compile check, scenarios, the differential test against Python).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "thing_model.h"

static thing_properties_t live;
static thing_properties_t staging;

void thing_read_properties(thing_properties_t *props)
{
    props->Uptime = 42;
}

void thing_apply_properties(const thing_properties_t *props, uint64_t changed)
{
    (void)props;
    (void)changed;
}

int thing_service_Reboot(const thing_service_Reboot_input_t *input, thing_service_Reboot_output_t *output)
{
    (void)output;
    return input->DelayS >= 0 ? 200 : 460;
}

int thing_service_Measure(const thing_service_Measure_input_t *input, thing_service_Measure_output_t *output)
{
    output->Reading = (float)input->Channel * 1.5f;
    return 200;
}

static char line[4096];
static char reply[1024];

int main(void)
{
    if (alink_thing_model_check(&thing_model) != ALINK_OK) {
        puts("model check failed");
        return 1;
    }
    thing_read_properties(&live);
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strcspn(line, "\n");
        line[n] = '\0';
        alink_thing_result_t result;
        alink_status_t st;
        const alink_thing_field_t *outputs = NULL;
        uint32_t output_count = 0;
        union {
            thing_service_Reboot_input_t reboot;
            thing_service_Measure_input_t measure;
        } input;
        union {
            thing_service_Reboot_output_t reboot;
            thing_service_Measure_output_t measure;
        } output;
        if (strncmp(line, "set ", 4) == 0) {
            st = alink_thing_property_set(&thing_model, &live, &staging, line + 4, n - 4, &result);
        } else if (strncmp(line, "call ", 5) == 0) {
            const char *name = line + 5;
            size_t name_len = strcspn(name, " ");
            int index = alink_thing_service_index(&thing_model, name, name_len);
            if (index < 0 || name[name_len] != ' ') {
                puts("error unknown service");
                continue;
            }
            const char *json = name + name_len + 1;
            st = alink_thing_service_call(&thing_model, (uint32_t)index, json, strlen(json), &input, &output, &result);
            outputs = thing_model.services[index].outputs;
            output_count = thing_model.services[index].output_count;
        } else if (strcmp(line, "post") == 0) {
            size_t len = 0;
            char post[2048];
            st = alink_thing_property_post(&thing_model, &live, 0, 1, 0, post, sizeof post, &len);
            printf("%s\n", st == ALINK_OK ? post : alink_strerror(st));
            continue;
        } else {
            puts("error unknown request");
            continue;
        }
        if (st != ALINK_OK) {
            printf("error %s\n", alink_strerror(st));
            continue;
        }
        st = alink_thing_reply(&result, outputs, output_count, &output, reply, sizeof reply, NULL);
        printf("%d %s %016" PRIx64 " %s\n", result.code, result.message, result.changed,
               st == ALINK_OK ? reply : alink_strerror(st));
    }
    return 0;
}
