/* timeit [-q] [-w WARMUP] [-s FILE] N CMD [ARGS...]
 * Runs CMD N times (after WARMUP untimed runs, default 3) via fork/execvp/waitpid and
 * prints one line:
 *   median_ms=M mean_ms=A min_ms=L max_ms=H runs=N failures=F
 * where each sample is the wall time (CLOCK_MONOTONIC) from fork to reaped child.
 * -q sends the child's stdout and stderr to /dev/null; -s FILE appends every sample
 * (ms, one per line) to FILE. A failure is a run that did not
 * exit 0. Exit status: 0 if every timed run exited 0, 1 otherwise, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

static int run_once(char **argv, int quiet, double *ms) {
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("timeit: fork");
        exit(2);
    }
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                if (fd > 2) close(fd);
            }
        }
        execvp(argv[0], argv);
        fprintf(stderr, "timeit: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("timeit: waitpid");
            exit(2);
        }
    }
    *ms = now_ms() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void usage(void) {
    fprintf(stderr, "usage: timeit [-q] [-w WARMUP] [-s FILE] N CMD [ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int quiet = 0, warmup = 3, i = 1;
    const char *samples_file = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "-w") && i + 1 < argc) {
            warmup = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            samples_file = argv[++i];
        } else {
            usage();
        }
    }
    if (argc - i < 2) usage();
    long n = strtol(argv[i], NULL, 10);
    if (n <= 0) usage();
    char **cmd = &argv[i + 1];

    double ms, *samples = calloc((size_t)n, sizeof *samples);
    if (!samples) return 2;
    for (int w = 0; w < warmup; w++) run_once(cmd, quiet, &ms);
    long failures = 0;
    double sum = 0;
    for (long k = 0; k < n; k++) {
        if (!run_once(cmd, quiet, &samples[k])) failures++;
        sum += samples[k];
    }
    if (samples_file) {
        FILE *f = fopen(samples_file, "a");
        if (!f) {
            perror("timeit: samples file");
            return 2;
        }
        for (long k = 0; k < n; k++) fprintf(f, "%.3f\n", samples[k]);
        fclose(f);
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp);
    double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    printf("median_ms=%.3f mean_ms=%.3f min_ms=%.3f max_ms=%.3f runs=%ld failures=%ld\n",
           median, sum / n, samples[0], samples[n - 1], n, failures);
    return failures ? 1 : 0;
}
