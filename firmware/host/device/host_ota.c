/* Slots and the boot record of the host device; the scheme is in host_ota.h. */
#define _POSIX_C_SOURCE 200809L

#include "host_ota.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ALIYUN_HOST_FIRMWARE_VERSION
#define ALIYUN_HOST_FIRMWARE_VERSION "1.0.0"
#endif

#define BOOTED_ENV "ALIYUN_HOST_OTA_BOOTED"

/* volatile: the bytes are read at run time, so a rewritten copy reports its own version */
static volatile const char s_app_desc[sizeof HOST_OTA_DESC_MARKER - 1u + HOST_OTA_VERSION_FIELD] =
    HOST_OTA_DESC_MARKER ALIYUN_HOST_FIRMWARE_VERSION;

typedef enum { RECORD_VALID = 0, RECORD_PENDING, RECORD_TRYING } record_state_t;

static const char *const s_state_names[] = {"valid", "pending", "trying"};

const char *host_ota_running_version(void)
{
    static char version[HOST_OTA_VERSION_FIELD];
    for (size_t i = 0; i + 1u < sizeof version; i++) {
        version[i] = s_app_desc[sizeof HOST_OTA_DESC_MARKER - 1u + i];
    }
    version[sizeof version - 1u] = '\0';
    return version;
}

static void slot_path(const char *dir, int slot, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s/slot%d", dir, slot);
}

static bool read_record(const char *dir, int *slot, record_state_t *state)
{
    char path[300];
    char text[64] = {0};
    snprintf(path, sizeof path, "%s/boot", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(text, 1, sizeof text - 1u, f);
    fclose(f);
    text[n] = '\0';
    for (int s = 0; s < 2; s++) {
        for (int st = 0; st < 3; st++) {
            char expected[64];
            snprintf(expected, sizeof expected, "slot=%d state=%s\n", s, s_state_names[st]);
            if (strcmp(text, expected) == 0) {
                *slot = s;
                *state = (record_state_t)st;
                return true;
            }
        }
    }
    printf("host: ota: boot record %s unreadable: booting slot0\n", path);
    *slot = 0;
    *state = RECORD_VALID;
    return true;
}

static bool write_record(const char *dir, int slot, record_state_t state)
{
    char path[300];
    char tmp[310];
    char text[64];
    snprintf(path, sizeof path, "%s/boot", dir);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    int n = snprintf(text, sizeof text, "slot=%d state=%s\n", slot, s_state_names[state]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, text, (size_t)n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    return ok && rename(tmp, path) == 0;
}

static bool copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY);
    int out = in >= 0 ? open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700) : -1;
    bool ok = in >= 0 && out >= 0;
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof buf)) > 0) {
        ok = write(out, buf, (size_t)n) == n;
    }
    if (out >= 0) {
        ok = fsync(out) == 0 && ok;
        ok = close(out) == 0 && ok;
    }
    if (in >= 0) {
        close(in);
    }
    return ok;
}

static void exec_slot(const char *dir, int slot, char **argv)
{
    char path[300];
    slot_path(dir, slot, path, sizeof path);
    fflush(stdout);
    if (setenv(BOOTED_ENV, "1", 1) == 0) {
        execv(path, argv);
    }
    printf("host: ota: cannot run %s: %s\n", path, strerror(errno));
}

bool host_ota_boot(host_ota_t *ota, const char *dir, char **argv, char *why, size_t why_size)
{
    int slot = 0;
    record_state_t state = RECORD_VALID;
    memset(ota, 0, sizeof *ota);
    if (snprintf(ota->dir, sizeof ota->dir, "%s", dir) >= (int)sizeof ota->dir) {
        snprintf(why, why_size, "--ota-dir: path too long");
        return false;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, why_size, "--ota-dir %s: %s", dir, strerror(errno));
        return false;
    }
    if (!read_record(dir, &slot, &state)) {
        char path[300];
        slot_path(dir, 0, path, sizeof path);
        if (!copy_file("/proc/self/exe", path) || !write_record(dir, 0, RECORD_VALID)) {
            snprintf(why, why_size, "--ota-dir %s: cannot install slot0: %s", dir, strerror(errno));
            return false;
        }
        printf("host: ota: installed this image as slot0\n");
        return true;
    }
    if (getenv(BOOTED_ENV) != NULL) {
        unsetenv(BOOTED_ENV); /* a restart this image asks for is a fresh start */
        ota->running_slot = slot;
        ota->trying = state == RECORD_TRYING;
        printf("host: ota: running slot%d (%s)\n", slot, s_state_names[state]);
        return true;
    }
    if (state == RECORD_TRYING) {
        printf("host: ota: slot%d never came online: rolling back to slot%d\n", slot, 1 - slot);
        slot = 1 - slot;
        state = RECORD_VALID;
        if (!write_record(dir, slot, state)) {
            snprintf(why, why_size, "--ota-dir %s: cannot write the boot record", dir);
            return false;
        }
    } else if (state == RECORD_PENDING) {
        state = RECORD_TRYING;
        if (!write_record(dir, slot, state)) {
            snprintf(why, why_size, "--ota-dir %s: cannot write the boot record", dir);
            return false;
        }
    }
    exec_slot(dir, slot, argv);
    if (state == RECORD_TRYING && write_record(dir, 1 - slot, RECORD_VALID)) {
        /* an image that cannot even start is rolled back at once, like one the bootloader rejects */
        printf("host: ota: rolling back to slot%d\n", 1 - slot);
        exec_slot(dir, 1 - slot, argv);
    }
    snprintf(why, why_size, "--ota-dir %s: no slot can run", dir);
    return false;
}

void host_ota_passive_path(const host_ota_t *ota, char *out, size_t out_size)
{
    slot_path(ota->dir, 1 - ota->running_slot, out, out_size);
}

void host_ota_confirm(host_ota_t *ota)
{
    if (!ota->trying) {
        return;
    }
    if (write_record(ota->dir, ota->running_slot, RECORD_VALID)) {
        ota->trying = false;
        printf("host: ota: slot%d confirmed\n", ota->running_slot);
    } else {
        printf("host: ota: cannot write the boot record: slot%d stays unconfirmed\n", ota->running_slot);
    }
}

void host_ota_restart(char **argv)
{
    fflush(stdout);
    unsetenv(BOOTED_ENV);
    execv("/proc/self/exe", argv);
    printf("host: ota: cannot restart: %s\n", strerror(errno));
}

bool host_ota_switch(host_ota_t *ota, char **argv)
{
    int passive = 1 - ota->running_slot;
    char path[300];
    slot_path(ota->dir, passive, path, sizeof path);
    if (chmod(path, 0700) != 0 || !write_record(ota->dir, passive, RECORD_PENDING)) {
        printf("host: ota: cannot make slot%d the boot slot\n", passive);
        return false;
    }
    printf("host: ota: restarting into slot%d\n", passive);
    host_ota_restart(argv);
    (void)write_record(ota->dir, ota->running_slot, RECORD_VALID);
    return false;
}
