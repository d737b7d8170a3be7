/*
 * The TLS context the host device hands to libmosquitto: trusts exactly the given PEM bundle (the
 * firmware's aliyun_root_ca.h, or --ca FILE), checks the broker's name or IP like esp-tls does with
 * the common-name check on, and remembers why a handshake was rejected so the shell can log it.
 */
#ifndef HOST_TLS_H
#define HOST_TLS_H

#include <stddef.h>

#include "alink_shell_facts.h"

typedef struct ssl_ctx_st SSL_CTX;

/* A new context for one connection to host; NULL on failure (why says what). Free with SSL_CTX_free. */
SSL_CTX *host_tls_context(const char *pem_bundle, size_t pem_len, const char *host, char *why, size_t why_size);

/* Why the last certificate check failed, as the core names it (ALINK_CERT_ACCEPTED: it did not). Resets it. */
alink_cert_refusal_t host_tls_take_refusal(void);

#endif
