/* cgfloor DIR N
 * The kernel's own floor for a fresh cgroup per run, measured in-process (no fork, no
 * judgebox): N times mkdir DIR/cgfloor-I and rmdir it, then N times the same with the
 * limits a run gets written in between (memory.max, memory.swap.max, pids.max). DIR must
 * be a cgroup2 directory with memory and pids enabled in its subtree_control. Prints:
 *   floor mkdir_rmdir_ms=M with_limits_ms=L runs=N
 * (medians). Exit status 0, 1 when a step failed, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int write_file(const char *dir, const char *name, const char *value) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

/* One fresh cgroup's life; returns its duration in ms or -1. */
static double one(const char *parent, int i, int limits) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/cgfloor-%d", parent, i);
    double t0 = now_ms();
    if (mkdir(dir, 0755) < 0) return -1;
    if (limits && (write_file(dir, "memory.max", "268435456") < 0 ||
                   (write_file(dir, "memory.swap.max", "0") < 0 && errno != ENOENT) ||
                   write_file(dir, "pids.max", "64") < 0)) {
        rmdir(dir);
        return -1;
    }
    if (rmdir(dir) < 0) return -1;
    return now_ms() - t0;
}

int main(int argc, char **argv) {
    if (argc != 3 || atoi(argv[2]) <= 0) {
        fprintf(stderr, "usage: cgfloor DIR N\n");
        return 2;
    }
    int n = atoi(argv[2]);
    double *bare = calloc(n, sizeof *bare), *full = calloc(n, sizeof *full);
    if (!bare || !full) return 1;
    for (int i = 0; i < n; i++) {
        if ((bare[i] = one(argv[1], i, 0)) < 0 || (full[i] = one(argv[1], i, 1)) < 0) {
            fprintf(stderr, "cgfloor: %s/cgfloor-%d: %s\n", argv[1], i, strerror(errno));
            return 1;
        }
    }
    printf("floor mkdir_rmdir_ms=%.3f with_limits_ms=%.3f runs=%d\n", median(bare, n),
           median(full, n), n);
    return 0;
}
