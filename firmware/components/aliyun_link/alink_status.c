#include "alink_status.h"

const char *alink_strerror(alink_status_t status)
{
    switch (status) {
    case ALINK_OK:
        return "ok";
    case ALINK_ERR_ARG:
        return "invalid argument";
    case ALINK_ERR_BUFFER:
        return "buffer too small";
    case ALINK_ERR_CONFIG:
        return "bad configuration";
    case ALINK_ERR_TOO_LARGE:
        return "too large";
    case ALINK_ERR_NOT_JSON:
        return "not JSON";
    case ALINK_ERR_NESTING:
        return "too deeply nested";
    case ALINK_ERR_NO_ID:
        return "no id";
    case ALINK_ERR_BAD_ID:
        return "bad id";
    case ALINK_ERR_NO_PARAMS:
        return "no params";
    case ALINK_ERR_BAD_VALUE:
        return "bad LightSwitch";
    case ALINK_ERR_NO_DN:
        return "no dn";
    case ALINK_ERR_BAD_SWITCH:
        return "bad s";
    case ALINK_ERR_NO_MEMORY:
        return "out of memory";
    }
    return "unknown status";
}
