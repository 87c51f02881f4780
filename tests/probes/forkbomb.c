/* forkbomb: every process forks forever; children stay alive; fork errors are ignored
 * (the process sleeps 10 ms and tries again). Prints nothing.
 * forkbomb N: instead, try to start N sleeping children at once, print how many processes
 * existed at the peak (children started + 1), then kill them and exit 0.
 * Safety rail: each process arms alarm(60), so an accidental run outside a sandbox dies
 * on its own after a minute (the VM tests kill it within seconds). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int count_mode(int n) {
    pid_t kids[4096];
    int started = 0;
    for (int i = 0; i < n && i < 4096; i++) {
        pid_t pid = fork();
        if (pid == 0) { pause(); _exit(0); }
        if (pid > 0) kids[started++] = pid;
    }
    printf("%d\n", started + 1);
    fflush(stdout);
    for (int i = 0; i < started; i++) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}

int main(int argc, char **argv) {
    const struct timespec backoff = {0, 10 * 1000 * 1000};
    alarm(60);
    if (argc > 1) return count_mode(atoi(argv[1]));
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(60);  /* alarms are not inherited across fork */
        } else if (pid < 0) {
            nanosleep(&backoff, NULL);
        }
    }
}
