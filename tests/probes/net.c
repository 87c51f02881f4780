/* net: print "up:" and the interfaces that are up, then try a TCP round trip over
 * 127.0.0.1 (listen on an ephemeral port, connect, send, receive). Prints "loopback ok"
 * and exits 0, or "STEP errno=N" and exits 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *step) {
    printf("%s errno=%d\n", step, errno);
    return 1;
}

int main(void) {
    struct ifaddrs *ifs, *i;
    printf("up:");
    if (getifaddrs(&ifs) == 0) {
        for (i = ifs; i; i = i->ifa_next)
            if ((i->ifa_flags & IFF_UP) && i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
                printf(" %s", i->ifa_name);
        freeifaddrs(ifs);
    }
    printf("\n");
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return fail("socket");
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0) return fail("bind");
    if (listen(l, 1) < 0) return fail("listen");
    if (getsockname(l, (struct sockaddr *)&a, &len) < 0) return fail("getsockname");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) return fail("socket");
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0) return fail("accept");
    char buf[8] = {0};
    if (write(c, "ping", 4) != 4) return fail("write");
    if (read(s, buf, sizeof buf - 1) != 4 || strcmp(buf, "ping") != 0) return fail("read");
    printf("loopback ok\n");
    return 0;
}
