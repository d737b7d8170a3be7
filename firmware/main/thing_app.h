/*
 * The example product's application (firmware/main/thing_model.json, rendered into components/thing_model):
 * the callbacks thing_model.h declares, over this board's hardware.
 *   LightSwitch        the LED on CONFIG_ALIYUN_LED_GPIO (the core switches it: ALINK_ACT_SET_LED)
 *   Brightness         kept and reported; the plain GPIO LED has no dimmer (a dimmable lamp drives LEDC here)
 *   CurrentTemperature the chip's internal sensor (ESP-IDF temperature_sensor driver) on chips that have one
 *                      (ESP32-C3, -S2, -S3, -C6, ...): the die's temperature, a little above the room's;
 *                      elsewhere (the classic ESP32 has none) the stand-in THING_APP_STAND_IN_TEMPERATURE_C
 *   CurrentHumidity    the stand-in THING_APP_STAND_IN_HUMIDITY (no chip measures it: a product wires a sensor)
 *   Blink              blinks the LED `times` times, `interval_ms` apart, on an esp_timer; answered at once
 *   TemperatureAlarm   posted when the temperature rises above CONFIG_ALIYUN_TEMPERATURE_ALARM_C, once until
 *                      it falls 2 °C below it again
 */
#pragma once

#include <stdint.h>

#include "aliyun_link.h"

#ifdef __cplusplus
extern "C" {
#endif

#define THING_APP_STAND_IN_TEMPERATURE_C 25.0f
#define THING_APP_STAND_IN_HUMIDITY 50.0f

/* Starts the sensor and the blink timer; the LED GPIO is already an output. */
void thing_app_start(void);

/* Points the core's thing-model fields at the application's values and buffers. */
void thing_app_configure(alink_config_t *config);

/* Before each TICK: fresh readings into the live values. */
void thing_app_before_tick(void);

/* After each TICK: the TemperatureAlarm event when the reading crossed the threshold (online only). */
void thing_app_after_tick(alink_t *core, uint64_t now_ms);

#ifdef __cplusplus
}
#endif
