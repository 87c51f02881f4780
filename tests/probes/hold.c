/* hold MIB MS: allocate MIB MiB, touch every page, keep it for MS milliseconds, print
 * "ok". Exit 1 (with a message on stderr) when the allocation fails, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: hold MIB MS\n");
        return 2;
    }
    long mib = atol(argv[1]), ms = atol(argv[2]);
    size_t len = (size_t)mib << 20;
    volatile char *p = malloc(len ? len : 1);
    if (!p) {
        fprintf(stderr, "hold: malloc(%ld MiB) failed\n", mib);
        return 1;
    }
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
    puts("ok");
    return 0;
}
