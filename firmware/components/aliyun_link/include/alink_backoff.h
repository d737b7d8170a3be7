/*
 * Reconnect delays: exponential, capped, with "equal jitter" (half the ceiling fixed, half random),
 * so that a fleet that lost its broker at once does not come back at once, and no retry is ever
 * immediate. The random value is a parameter (FreeRTOS backoffAlgorithm's habit): the caller draws
 * it and sleeps; this file only computes.
 */
#ifndef ALINK_BACKOFF_H
#define ALINK_BACKOFF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t base_ms;
    uint32_t cap_ms;
    uint32_t attempts; /* failures since the last reset */
} alink_backoff_t;

/* base_ms 0 is raised to 1; cap_ms below base_ms is raised to base_ms. */
void alink_backoff_init(alink_backoff_t *b, uint32_t base_ms, uint32_t cap_ms);

/* The ceiling of the next delay: min(cap, base * 2^attempts), without overflow. */
uint32_t alink_backoff_ceiling_ms(const alink_backoff_t *b);

/* The next delay, in [ceiling/2, ceiling]; counts one more attempt. */
uint32_t alink_backoff_next_ms(alink_backoff_t *b, uint32_t random_value);

/* After a connection that stayed up: start again from base. */
void alink_backoff_reset(alink_backoff_t *b);

/* After a refusal that retrying soon cannot fix (bad credentials): from now on, the cap. */
void alink_backoff_to_cap(alink_backoff_t *b);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_BACKOFF_H */
