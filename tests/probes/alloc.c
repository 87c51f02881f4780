/* alloc N: allocate N MiB, write to every page so it is really charged, print "ok".
 * Exit 2 on bad usage, 1 if malloc fails (never reached under a memory cgroup: the
 * kernel OOM-kills on touch instead). Built with gcc -static for the VM test rootfs. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: alloc MIB\n");
        return 2;
    }
    char *end;
    long mib = strtol(argv[1], &end, 10);
    if (*end != '\0' || mib < 0) {
        fprintf(stderr, "alloc: bad size '%s'\n", argv[1]);
        return 2;
    }
    size_t len = (size_t)mib << 20;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    volatile char *p = malloc(len ? len : 1);
    if (!p) {
        fprintf(stderr, "alloc: malloc(%ld MiB) failed\n", mib);
        return 1;
    }
    for (size_t i = 0; i < len; i += (size_t)page) p[i] = (char)(i / (size_t)page + 1);
    if (len) p[len - 1] = 1;
    puts("ok");
    return 0;
}
