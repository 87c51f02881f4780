/* inotify probe: "hog SECONDS" takes inotify instances until the kernel refuses one (the
 * per-user limit, or RLIMIT_NOFILE), prints how many it holds, and keeps them SECONDS;
 * "one" takes a single instance and says whether it got it (exit 0) or not (exit 1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "one") == 0) {
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd < 0) {
            printf("fail: %s\n", strerror(errno));
            return 1;
        }
        printf("ok\n");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "hog") == 0) {
        int held = 0;
        while (inotify_init1(IN_CLOEXEC) >= 0)
            held++;
        printf("held %d (%s)\n", held, strerror(errno));
        fflush(stdout);
        sleep(atoi(argv[2]));
        return 0;
    }
    fprintf(stderr, "usage: inotify one | inotify hog SECONDS\n");
    return 2;
}
