/* burn SECS: busy-loop until this process has used SECS seconds of CPU time
 * (CLOCK_PROCESS_CPUTIME_ID), then print "ok". SECS may be fractional. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: burn SECS\n");
        return 2;
    }
    char *end;
    double secs = strtod(argv[1], &end);
    if (*end != '\0' || secs < 0) {
        fprintf(stderr, "burn: bad duration '%s'\n", argv[1]);
        return 2;
    }
    volatile unsigned long spin = 0;
    double start = cpu_now();
    while (cpu_now() - start < secs) {
        for (int i = 0; i < 10000; i++) spin++;
    }
    puts("ok");
    return 0;
}
