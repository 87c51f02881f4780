/* The soak's submission (scripts/soak.sh): the test's stdin names what to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

int main(void) {
    char mode[32] = "";
    long n = 0;
    if (scanf("%31s %ld", mode, &n) < 1) return 3;
    if (!strcmp(mode, "normal")) { printf("%ld\n", n * 2); return 0; }
    if (!strcmp(mode, "wrong")) { printf("%ld\n", n * 2 + 1); return 0; }
    if (!strcmp(mode, "tle")) { volatile unsigned long x = 0; for (;;) x++; }
    if (!strcmp(mode, "mle")) {
        for (;;) { char *p = malloc(1 << 20); if (!p) return 4; memset(p, 1, 1 << 20); }
    }
    if (!strcmp(mode, "fork")) { for (;;) fork(); }
    if (!strcmp(mode, "flood")) { static char buf[65536]; memset(buf, 'y', sizeof buf); for (;;) fwrite(buf, 1, sizeof buf, stdout); }
    if (!strcmp(mode, "crash")) { raise(SIGSEGV); }
    return 5;
}
