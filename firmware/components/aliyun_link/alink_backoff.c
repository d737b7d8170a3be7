#include "alink_backoff.h"

#include <stddef.h>

/* 2^31 already exceeds every uint32 cap, so more doublings cannot change the ceiling. */
#define ATTEMPTS_SATURATE 32u

void alink_backoff_init(alink_backoff_t *b, uint32_t base_ms, uint32_t cap_ms)
{
    if (!b) {
        return;
    }
    b->base_ms = base_ms ? base_ms : 1u;
    b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
    b->attempts = 0;
}

uint32_t alink_backoff_ceiling_ms(const alink_backoff_t *b)
{
    uint64_t ceiling = b->base_ms;
    for (uint32_t i = 0; i < b->attempts && ceiling < b->cap_ms; i++) {
        ceiling *= 2u;
    }
    return ceiling > b->cap_ms ? b->cap_ms : (uint32_t)ceiling;
}

uint32_t alink_backoff_next_ms(alink_backoff_t *b, uint32_t random_value)
{
    uint32_t ceiling = alink_backoff_ceiling_ms(b);
    uint32_t half = ceiling / 2u;
    uint32_t span = ceiling - half; /* delay = half + [0, span] */
    if (b->attempts < ATTEMPTS_SATURATE) {
        b->attempts++;
    }
    return half + (uint32_t)(random_value % ((uint64_t)span + 1u));
}

void alink_backoff_reset(alink_backoff_t *b)
{
    b->attempts = 0;
}

void alink_backoff_to_cap(alink_backoff_t *b)
{
    b->attempts = ATTEMPTS_SATURATE;
}
