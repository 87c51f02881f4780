/* runloop: the peers' side of scripts/bench.sh's judging benchmark. Runs CMD once per test
 * (DIR/1.in .. DIR/N.in as stdin), P at a time, and compares each stdout with DIR/i.out in
 * process (trailing whitespace of each line and trailing blank lines ignored, as the
 * judge's default), so a peer pays for nothing judgebox does not: no shell, no cmp, one
 * fork and exec of CMD per test. Prints "RUNS_PER_SECOND" and exits 1 on any failure.
 *
 *   runloop -p P -d DIR -n N [-r ROOT] -- CMD [ARGS...]
 *
 * -r ROOT: the child chroots into ROOT before exec (the floor of a program that lives in an
 * image rootfs, e.g. its python3).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUT (1 << 20)

static const char *dir;
static const char *root;
static char **cmd;
static int tests;
static atomic_int next = 1;
static atomic_int failures;

/* Length of `s` once trailing whitespace of every line and trailing blank lines go. */
static size_t trimmed(char *s, size_t n) {
    size_t out = 0, line = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\n') {
            size_t end = i;
            while (end > line && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r')) end--;
            memmove(s + out, s + line, end - line);
            out += end - line;
            if (i < n) s[out++] = '\n';
            line = i + 1;
        }
    }
    while (out > 0 && (s[out - 1] == '\n')) out--;
    return out;
}

static size_t read_all(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n < cap && (r = read(fd, buf + n, cap - n)) > 0) n += (size_t)r;
    return n;
}

static int one(int i, char *out, char *expected) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%d.in", dir, i);
    int in = open(path, O_RDONLY | O_CLOEXEC);
    int pipefd[2];
    if (in < 0 || pipe2(pipefd, O_CLOEXEC) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in, 0);
        dup2(pipefd[1], 1);
        if (root && (chroot(root) != 0 || chdir("/") != 0)) _exit(126);
        execvp(cmd[0], cmd);
        _exit(127);
    }
    close(in);
    close(pipefd[1]);
    size_t n = read_all(pipefd[0], out, MAX_OUT);
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    snprintf(path, sizeof path, "%s/%d.out", dir, i);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t m = read_all(fd, expected, MAX_OUT);
    close(fd);
    size_t a = trimmed(out, n), b = trimmed(expected, m);
    return a == b && memcmp(out, expected, a) == 0 ? 0 : -1;
}

static void *worker(void *arg) {
    (void)arg;
    char *out = malloc(MAX_OUT), *expected = malloc(MAX_OUT);
    int i;
    while ((i = atomic_fetch_add(&next, 1)) <= tests)
        if (one(i, out, expected) != 0) atomic_fetch_add(&failures, 1);
    free(out);
    free(expected);
    return NULL;
}

int main(int argc, char **argv) {
    int parallel = 1, opt;
    while ((opt = getopt(argc, argv, "+p:d:n:r:")) != -1) {
        if (opt == 'p') parallel = atoi(optarg);
        else if (opt == 'r') root = optarg;
        else if (opt == 'd') dir = optarg;
        else if (opt == 'n') tests = atoi(optarg);
        else return 2;
    }
    if (!dir || tests < 1 || parallel < 1 || optind >= argc) {
        fprintf(stderr, "usage: runloop -p P -d DIR -n N [-r ROOT] -- CMD [ARGS...]\n");
        return 2;
    }
    cmd = argv + optind;
    pthread_t t[64];
    if (parallel > 64) parallel = 64;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < parallel; k++) pthread_create(&t[k], NULL, worker, NULL);
    for (int k = 0; k < parallel; k++) pthread_join(t[k], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (failures) {
        fprintf(stderr, "runloop: %d of %d tests failed (%s)\n", (int)failures, tests, cmd[0]);
        return 1;
    }
    printf("%.1f\n", tests / secs);
    return 0;
}
