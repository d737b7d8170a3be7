/* The HTTPS download of an OTA image; the contract is in host_ota_fetch.h. */
#define _POSIX_C_SOURCE 200809L

#include "host_ota_fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "host_tls.h"

typedef struct {
    char host[256];
    char port[8];
    char path[ALINK_OTA_URL_MAX + 1];
} url_t;

typedef struct {
    pthread_t thread;
    pthread_mutex_t lock;
    bool started;
    volatile bool stop;
    host_ota_fetch_status_t status; /* under lock */
    url_t url;
    uint32_t size;
    alink_ota_sign_method_t method;
    char slot_path[300];
    const char *ca_pem;
    size_t ca_len;
} fetch_t;

static fetch_t s_fetch = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* https://host[:port]/path (the core already refused anything else); no userinfo, no IPv6 literal. */
static bool parse_url(const char *text, url_t *out)
{
    const char *rest = text + strlen("https://");
    size_t host_len = strcspn(rest, ":/");
    if (host_len == 0 || host_len >= sizeof out->host || memchr(rest, '@', host_len) != NULL) {
        return false;
    }
    memcpy(out->host, rest, host_len);
    out->host[host_len] = '\0';
    rest += host_len;
    snprintf(out->port, sizeof out->port, "443");
    if (*rest == ':') {
        size_t port_len = strspn(rest + 1, "0123456789");
        if (port_len == 0 || port_len > 5) {
            return false;
        }
        memcpy(out->port, rest + 1, port_len);
        out->port[port_len] = '\0';
        rest += 1 + port_len;
    }
    return snprintf(out->path, sizeof out->path, "%s", *rest ? rest : "/") < (int)sizeof out->path;
}

static void set_progress(uint32_t received, unsigned attempts)
{
    pthread_mutex_lock(&s_fetch.lock);
    s_fetch.status.received_bytes = received;
    s_fetch.status.attempts = attempts;
    pthread_mutex_unlock(&s_fetch.lock);
}

static int tcp_connect(const url_t *url)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    if (getaddrinfo(url->host, url->port, &hints, &found) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = found; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0) {
            struct timeval timeout = {.tv_sec = HOST_OTA_FETCH_TIMEOUT_S, .tv_usec = 0};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
            if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(found);
    return fd;
}

/* Reads the response head; returns the status code (-1 on failure) and the Content-Range start. */
static int read_head(SSL *ssl, long long *range_start, char *body, size_t body_size, size_t *body_len)
{
    char head[4096];
    size_t len = 0;
    char *end = NULL;
    while (end == NULL) {
        if (len + 1u >= sizeof head) {
            return -1;
        }
        int n = SSL_read(ssl, head + len, (int)(sizeof head - 1u - len));
        if (n <= 0) {
            return -1;
        }
        len += (size_t)n;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - head) + 4u;
    *body_len = len - head_len < body_size ? len - head_len : body_size;
    memcpy(body, head + head_len, *body_len);
    *end = '\0';
    int code = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &code) != 1) {
        return -1;
    }
    *range_start = -1;
    for (char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Range: bytes ", 21) == 0) {
            *range_start = strtoll(line + 23, NULL, 10);
        }
    }
    return code;
}

typedef enum { ATTEMPT_DONE, ATTEMPT_DROPPED, ATTEMPT_WRITE_FAILED } attempt_t;

/* One connection: asks for the bytes from *received on, appends and hashes them. */
static attempt_t attempt(SSL_CTX *ctx, int fd_slot, EVP_MD_CTX *md, uint32_t *received, unsigned attempts)
{
    char chunk[16384];
    attempt_t result = ATTEMPT_DROPPED;
    int fd = tcp_connect(&s_fetch.url);
    SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, s_fetch.url.host) != 1 ||
        SSL_connect(ssl) != 1) {
        alink_cert_refusal_t refusal = host_tls_take_refusal();
        const char *verify = refusal != ALINK_CERT_ACCEPTED ? alink_cert_refusal_text(refusal) : NULL;
        printf("host: ota: cannot reach %s:%s%s%s\n", s_fetch.url.host, s_fetch.url.port,
               verify ? ": " : "", verify ? verify : "");
        goto out;
    }
    char request[ALINK_OTA_URL_MAX + 512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%u-\r\nConnection: close\r\n\r\n",
                     s_fetch.url.path, s_fetch.url.host, (unsigned)*received);
    if (n < 0 || (size_t)n >= sizeof request || SSL_write(ssl, request, n) != n) {
        goto out;
    }
    long long range_start = -1;
    size_t have = 0;
    int code = read_head(ssl, &range_start, chunk, sizeof chunk, &have);
    if (code == 200 && *received > 0) {
        /* the server ignored the Range: start over */
        printf("host: ota: server ignored the range: starting over\n");
        if (ftruncate(fd_slot, 0) != 0 || lseek(fd_slot, 0, SEEK_SET) != 0 ||
            EVP_DigestInit_ex(md, EVP_MD_CTX_get0_md(md), NULL) != 1) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        *received = 0;
    } else if (!(code == 206 && range_start == (long long)*received) && !(code == 200 && *received == 0)) {
        printf("host: ota: http status %d\n", code);
        goto out;
    }
    while (*received < s_fetch.size && !s_fetch.stop) {
        if (have == 0) {
            int got = SSL_read(ssl, chunk, (int)sizeof chunk);
            if (got <= 0) {
                goto out;
            }
            have = (size_t)got;
        }
        size_t room = s_fetch.size - *received;
        size_t take = have < room ? have : room;
        if (write(fd_slot, chunk, take) != (ssize_t)take) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        if (EVP_DigestUpdate(md, chunk, take) != 1) {
            result = ATTEMPT_WRITE_FAILED;
            goto out;
        }
        *received += (uint32_t)take;
        have = 0;
        set_progress(*received, attempts);
    }
    result = *received == s_fetch.size ? ATTEMPT_DONE : ATTEMPT_DROPPED;
out:
    if (ssl != NULL) {
        SSL_free(ssl);
    }
    if (fd >= 0) {
        close(fd);
    }
    return result;
}

static void finish(host_ota_fetch_state_t state, alink_ota_step_t step, const char *digest_hex)
{
    pthread_mutex_lock(&s_fetch.lock);
    s_fetch.status.state = state;
    s_fetch.status.step = step;
    if (digest_hex != NULL) {
        snprintf(s_fetch.status.digest_hex, sizeof s_fetch.status.digest_hex, "%s", digest_hex);
    }
    pthread_mutex_unlock(&s_fetch.lock);
}

static void *run(void *unused)
{
    (void)unused;
    char why[160];
    uint32_t received = 0;
    SSL_CTX *ctx = host_tls_context(s_fetch.ca_pem, s_fetch.ca_len, s_fetch.url.host, why, sizeof why);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int fd_slot = open(s_fetch.slot_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const EVP_MD *kind = s_fetch.method == ALINK_OTA_SIGN_MD5 ? EVP_md5() : EVP_sha256();
    if (ctx == NULL || md == NULL || fd_slot < 0 || EVP_DigestInit_ex(md, kind, NULL) != 1) {
        printf("host: ota: cannot start: %s\n", ctx == NULL ? why : "slot or hash unavailable");
        finish(HOST_OTA_FETCH_FAILED, ctx == NULL ? ALINK_OTA_STEP_DOWNLOAD_FAILED : ALINK_OTA_STEP_WRITE_FAILED,
               NULL);
        goto out;
    }
    attempt_t result = ATTEMPT_DROPPED;
    for (unsigned n = 1; n <= HOST_OTA_FETCH_ATTEMPTS && !s_fetch.stop; n++) {
        if (n > 1) {
            printf("host: ota: connection lost at %u bytes: resuming (attempt %u of %u)\n", (unsigned)received, n,
                   HOST_OTA_FETCH_ATTEMPTS);
            struct timespec pause = {.tv_sec = HOST_OTA_FETCH_RETRY_MS / 1000u, .tv_nsec = 0};
            nanosleep(&pause, NULL);
        }
        set_progress(received, n);
        result = attempt(ctx, fd_slot, md, &received, n);
        if (result != ATTEMPT_DROPPED) {
            break;
        }
    }
    if (result == ATTEMPT_DONE && fsync(fd_slot) != 0) {
        result = ATTEMPT_WRITE_FAILED;
    }
    if (result == ATTEMPT_DONE) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned digest_len = 0;
        char hex[ALINK_OTA_SIGN_MAX + 1];
        if (EVP_DigestFinal_ex(md, digest, &digest_len) != 1 || digest_len * 2u > ALINK_OTA_SIGN_MAX) {
            finish(HOST_OTA_FETCH_FAILED, ALINK_OTA_STEP_WRITE_FAILED, NULL);
            goto out;
        }
        for (unsigned i = 0; i < digest_len; i++) {
            snprintf(hex + 2u * i, 3, "%02x", digest[i]);
        }
        hex[2u * digest_len] = '\0';
        finish(HOST_OTA_FETCH_DONE, 0, hex);
    } else {
        finish(HOST_OTA_FETCH_FAILED,
               result == ATTEMPT_WRITE_FAILED ? ALINK_OTA_STEP_WRITE_FAILED : ALINK_OTA_STEP_DOWNLOAD_FAILED, NULL);
    }
out:
    if (fd_slot >= 0) {
        close(fd_slot);
    }
    EVP_MD_CTX_free(md);
    SSL_CTX_free(ctx);
    return NULL;
}

bool host_ota_fetch_start(const alink_action_t *begin, const char *slot_path, const char *ca_pem, size_t ca_len)
{
    if (s_fetch.started || !parse_url(begin->u.ota_begin.url, &s_fetch.url) ||
        snprintf(s_fetch.slot_path, sizeof s_fetch.slot_path, "%s", slot_path) >= (int)sizeof s_fetch.slot_path) {
        return false;
    }
    s_fetch.size = begin->u.ota_begin.size;
    s_fetch.method = begin->u.ota_begin.sign_method;
    s_fetch.ca_pem = ca_pem;
    s_fetch.ca_len = ca_len;
    s_fetch.stop = false;
    memset(&s_fetch.status, 0, sizeof s_fetch.status);
    s_fetch.status.state = HOST_OTA_FETCH_RUNNING;
    if (pthread_create(&s_fetch.thread, NULL, run, NULL) != 0) {
        s_fetch.status.state = HOST_OTA_FETCH_IDLE;
        return false;
    }
    s_fetch.started = true;
    return true;
}

void host_ota_fetch_poll(host_ota_fetch_status_t *status)
{
    pthread_mutex_lock(&s_fetch.lock);
    *status = s_fetch.status;
    if (s_fetch.status.state == HOST_OTA_FETCH_DONE || s_fetch.status.state == HOST_OTA_FETCH_FAILED) {
        s_fetch.status.state = HOST_OTA_FETCH_IDLE;
    }
    pthread_mutex_unlock(&s_fetch.lock);
    if (status->state == HOST_OTA_FETCH_DONE || status->state == HOST_OTA_FETCH_FAILED) {
        pthread_join(s_fetch.thread, NULL);
        s_fetch.started = false;
    }
}

void host_ota_fetch_stop(void)
{
    if (s_fetch.started) {
        s_fetch.stop = true;
        pthread_join(s_fetch.thread, NULL);
        s_fetch.started = false;
    }
}
