/*
 * The device's network, behind one small interface so that the medium is a build choice
 * (menuconfig: Aliyun IoT device > Network). net_wifi.c is the Wi-Fi station implementation,
 * net_eth.c the OpenCores Ethernet one for QEMU; exactly one implementation is compiled.
 * esp_netif_init() and the default event loop are created by app_main before net_connect_start().
 */
#pragma once

#include <stdbool.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The single signal into the core: true on "got IP", false on "lost IP" (or link). Called from the
 * default event loop task; it must only queue. */
typedef void (*net_connect_signal_fn)(bool have_ip);

/* Brings the interface up and keeps reconnecting it; reports through `signal`. */
esp_err_t net_connect_start(net_connect_signal_fn signal);

/* Stops and starts the interface (the core's escalation after a long outage). */
esp_err_t net_connect_restart(void);

/* Signal strength for the property post, in dBm; 0 when unknown or not applicable. */
int net_connect_rssi_dbm(void);

#ifdef __cplusplus
}
#endif
