/* The one status enum of the aliyun_link component. */
#ifndef ALINK_STATUS_H
#define ALINK_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ALINK_OK = 0,
    ALINK_ERR_ARG,        /* NULL pointer or a value out of range */
    ALINK_ERR_BUFFER,     /* the output would not fit the caller's buffer (nothing is cut short) */
    ALINK_ERR_CONFIG,     /* alink_init: a configuration value the platform or the core refuses */
    ALINK_ERR_TOO_LARGE,  /* an inbound payload over ALINK_INBOUND_MAX bytes */
    ALINK_ERR_NOT_JSON,   /* an inbound payload that is not a JSON object */
    ALINK_ERR_NESTING,    /* an inbound payload nested deeper than ALINK_JSON_DEPTH_MAX */
    ALINK_ERR_NO_ID,      /* a command without its "id" */
    ALINK_ERR_BAD_ID,     /* an "id" that is not a string of 1..10 decimal digits */
    ALINK_ERR_NO_PARAMS,  /* a property set without a "params" object */
    ALINK_ERR_BAD_VALUE,  /* a known property with a value outside its range */
    ALINK_ERR_NO_DN,      /* a setled command without a string "dn" */
    ALINK_ERR_BAD_SWITCH, /* a setled command whose "s" is not 0 or 1 */
    ALINK_ERR_NO_MEMORY,  /* cJSON could not allocate while parsing */
} alink_status_t;

/* A short English phrase for logs. */
const char *alink_strerror(alink_status_t status);

#ifdef __cplusplus
}
#endif

#endif /* ALINK_STATUS_H */
