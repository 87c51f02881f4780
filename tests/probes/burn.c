/* burn SECONDS [CHILDREN]: spin on the CPU for SECONDS of this process's CPU time (0 = forever),
 * optionally in CHILDREN extra child processes at the same time. Prints "done" when finished. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void burn(double seconds) {
    volatile unsigned long x = 0;
    while (seconds <= 0 || cpu_now() < seconds) {
        for (int i = 0; i < 100000; i++) x += i;
    }
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0;
    int children = argc > 2 ? atoi(argv[2]) : 0;
    for (int i = 0; i < children; i++) {
        if (fork() == 0) { burn(seconds); _exit(0); }
    }
    burn(children > 0 ? 0.01 : seconds);
    while (wait(NULL) > 0) {}
    printf("done\n");
    return 0;
}
