/* forkbomb: every process forks forever; children stay alive; fork errors are ignored
 * (the process sleeps 10 ms and tries again). Prints nothing.
 * Safety rail: each process arms alarm(60), so an accidental run outside a sandbox dies
 * on its own after a minute (the VM tests kill it within seconds). */
#include <unistd.h>
#include <time.h>

int main(void) {
    const struct timespec backoff = {0, 10 * 1000 * 1000};
    alarm(60);
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(60);  /* alarms are not inherited across fork */
        } else if (pid < 0) {
            nanosleep(&backoff, NULL);
        }
    }
}
