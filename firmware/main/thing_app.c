/* The example product's application over this board (thing_app.h). */
#include "thing_app.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "driver/gpio.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "sdkconfig.h"
#include "thing_model.h"
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
#include "driver/temperature_sensor.h"
#endif

#define PAYLOAD_SIZE 512u       /* the example's post with time stamps is under 300 bytes */
#define ALARM_HYSTERESIS_C 2.0f /* one alarm per excursion, not one per TICK while it hovers at the line */
#define SERVICE_FAILED 500      /* the reply's code when the service could not run */

static const char *TAG = "thing_app";

static thing_properties_t s_props;
static thing_properties_t s_staging;
static thing_properties_t s_posted;
static thing_service_Blink_input_t s_blink_input;
static thing_service_Blink_output_t s_blink_output;
static char s_payload[PAYLOAD_SIZE];
static esp_timer_handle_t s_blink_timer;
static volatile uint32_t s_blink_toggles_left; /* written by the main task, counted down by the timer task */
static bool s_alarm_posted;
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
static temperature_sensor_handle_t s_sensor;
static bool s_sensor_failed_logged;
static esp_log_level_t s_sensor_driver_log_level;
/* ESP-IDF's driver tag (esp_driver_tsens/src/temperature_sensor.c): it logs an error on every failed read. */
#define TSENS_DRIVER_TAG "temperature_sensor"
#endif

#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
/* The reading on the TSL's grid (-40..120, step 0.1), so the platform accepts what is posted. */
static float on_grid(float celsius)
{
    if (celsius < -40.0f) {
        celsius = -40.0f;
    } else if (celsius > 120.0f) {
        celsius = 120.0f;
    }
    return roundf(celsius * 10.0f) / 10.0f;
}
#endif

static float read_temperature(float previous)
{
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
    float celsius = 0.0f;
    if (s_sensor != NULL && temperature_sensor_get_celsius(s_sensor, &celsius) == ESP_OK) {
        if (s_sensor_failed_logged) {
            s_sensor_failed_logged = false;
            esp_log_level_set(TSENS_DRIVER_TAG, s_sensor_driver_log_level);
            ESP_LOGI(TAG, "internal temperature sensor readable again");
        }
        return on_grid(celsius);
    }
    if (!s_sensor_failed_logged) { /* e.g. QEMU, which does not model the sensor */
        s_sensor_failed_logged = true;
        ESP_LOGW(TAG, "internal temperature sensor unreadable: CurrentTemperature stays %.1f", (double)previous);
        /* The properties are read on every tick: without this the driver's own error line (out of its measure
         * range) would fill the console once a second (seen in QEMU) while this line already says it once. */
        s_sensor_driver_log_level = esp_log_level_get(TSENS_DRIVER_TAG);
        esp_log_level_set(TSENS_DRIVER_TAG, ESP_LOG_NONE);
    }
    return previous;
#else
    (void)previous;
    return THING_APP_STAND_IN_TEMPERATURE_C;
#endif
}

/* Each call toggles the LED; after `times` blinks it is back where LightSwitch has it, and the timer stops. */
static void blink_step(void *arg)
{
    (void)arg;
    uint32_t left = s_blink_toggles_left;
    if (left == 0) {
        (void)esp_timer_stop(s_blink_timer);
        return;
    }
    s_blink_toggles_left = left - 1u;
    bool on = (left % 2u == 0u) ? !s_props.LightSwitch : s_props.LightSwitch;
    (void)gpio_set_level((gpio_num_t)CONFIG_ALIYUN_LED_GPIO, on ? 1u : 0u);
}

void thing_app_start(void)
{
    const esp_timer_create_args_t blink = {.callback = blink_step, .name = "blink"};
    if (esp_timer_create(&blink, &s_blink_timer) != ESP_OK) {
        s_blink_timer = NULL;
        ESP_LOGW(TAG, "no timer for the Blink service: it will answer %d", SERVICE_FAILED);
    }
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
    /* -10..80 °C: the range the driver measures with an error under 1 °C (ESP-IDF temperature sensor docs) */
    temperature_sensor_config_t config = TEMPERATURE_SENSOR_CONFIG_DEFAULT(-10, 80);
    if (temperature_sensor_install(&config, &s_sensor) != ESP_OK) {
        s_sensor = NULL;
    } else if (temperature_sensor_enable(s_sensor) != ESP_OK) {
        (void)temperature_sensor_uninstall(s_sensor);
        s_sensor = NULL;
    }
#endif
    s_props.LightSwitch = false; /* app_main set the LED GPIO low */
    s_props.Brightness = 100;
    s_props.CurrentTemperature = THING_APP_STAND_IN_TEMPERATURE_C;
    thing_read_properties(&s_props);
    s_posted = s_props;
}

/* After a set the core applied (it has already switched the LED for LightSwitch). */
static void applied(void *ctx, uint64_t changed)
{
    (void)ctx;
    thing_apply_properties(&s_props, changed);
}

void thing_app_configure(alink_config_t *config)
{
    config->thing_model = &thing_model;
    config->thing_props = &s_props;
    config->thing_staging = &s_staging;
    config->thing_posted = &s_posted;
    config->thing_post_min_interval_ms = CONFIG_ALIYUN_CHANGE_POST_MIN_INTERVAL_S * 1000u;
    config->thing_payload = s_payload;
    config->thing_payload_size = sizeof s_payload;
    config->thing_input = &s_blink_input;
    config->thing_input_size = sizeof s_blink_input;
    config->thing_output = &s_blink_output;
    config->thing_output_size = sizeof s_blink_output;
    config->thing_post_time = false;
    config->thing_applied = applied;
    config->thing_ctx = NULL;
}

void thing_app_before_tick(void)
{
    thing_read_properties(&s_props);
}

void thing_app_after_tick(alink_t *core, uint64_t now_ms)
{
    float celsius = s_props.CurrentTemperature;
    if (!s_alarm_posted && celsius > (float)CONFIG_ALIYUN_TEMPERATURE_ALARM_C &&
        alink_state(core) == ALINK_STATE_ONLINE) {
        thing_event_TemperatureAlarm_t alarm = {.CurrentTemperature = celsius};
        s_alarm_posted = alink_event_post(core, THING_EVENT_TemperatureAlarm, &alarm, now_ms) == ALINK_OK;
    } else if (s_alarm_posted && celsius < (float)CONFIG_ALIYUN_TEMPERATURE_ALARM_C - ALARM_HYSTERESIS_C) {
        s_alarm_posted = false;
    }
}

/* ---- the callbacks thing_model.h declares ---- */

void thing_read_properties(thing_properties_t *props)
{
    props->CurrentTemperature = read_temperature(props->CurrentTemperature);
    props->CurrentHumidity = THING_APP_STAND_IN_HUMIDITY;
}

void thing_apply_properties(const thing_properties_t *props, uint64_t changed)
{
    if ((changed >> THING_PROPERTY_Brightness) & 1u) {
        ESP_LOGI(TAG, "brightness %d%%", (int)props->Brightness);
    }
}

int thing_service_Blink(const thing_service_Blink_input_t *input, thing_service_Blink_output_t *output)
{
    (void)output;
    if (s_blink_timer == NULL) {
        return SERVICE_FAILED;
    }
    (void)esp_timer_stop(s_blink_timer); /* a blink still running gives way to this one */
    s_blink_toggles_left = (uint32_t)input->times * 2u;
    /* the engine checked times 1..20 and interval_ms 50..5000: on and off each take half an interval */
    if (esp_timer_start_periodic(s_blink_timer, (uint64_t)input->interval_ms * 500u) != ESP_OK) {
        return SERVICE_FAILED;
    }
    return 200;
}
