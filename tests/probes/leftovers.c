/* leftovers leave: leaves everything a run could try to pass to a later one: files in
 * /box, /tmp and /dev/shm (plain, hidden, hard-linked, a symlink, a FIFO, and 300 long
 * names: more than one directory read), a SysV shared memory segment, a SysV message
 * queue, a POSIX message queue, an abstract unix socket held by a background process
 * named "jb-leftover", and a mount attempt (which must fail). Prints "left".
 * leftovers leave-odd: what a scratch dir cannot simply be emptied of: a directory tree
 * in /tmp, and /box (the run's own) made mode 0700 with a user xattr. Prints "left".
 * leftovers check: prints one line per leftover it can still see and "clean" when it
 * sees none; exits 0 only when clean. */
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *FILES[] = {"/box/leftover", "/tmp/leftover", "/dev/shm/leftover",
                              "/box/.hidden", "/box/leftover-link", "/tmp/link",
                              "/dev/shm/fifo", "/tmp/dir"};
#define NFILES (int)(sizeof FILES / sizeof FILES[0])
#define MANY 300
static const char MANY_FMT[] = "/box/many-%03d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
static const key_t KEY = 0x4a42;
static const char *MQ = "/jb-leftover";
static const char SOCK[] = "\0jb-leftover";

static int abstract_socket(int do_bind) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, SOCK, sizeof SOCK - 1);
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + sizeof SOCK - 1;
    int r = do_bind ? bind(fd, (struct sockaddr *)&a, len) : connect(fd, (struct sockaddr *)&a, len);
    if (do_bind && r == 0) listen(fd, 1);
    return r == 0 ? fd : -1;
}

static void create(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) { write(fd, "x", 1); close(fd); }
}

static int leave_odd(void) {
    mkdir("/tmp/dir", 0755);
    mkdir("/tmp/dir/deeper", 0755);
    create("/tmp/dir/deeper/leftover");
    setxattr("/box", "user.jb", "x", 1, 0);
    chmod("/box", 0700);
    printf("left\n");
    return 0;
}

static int leave(void) {
    for (int i = 0; i < 4; i++) create(FILES[i]);
    link("/box/leftover", "/box/leftover-link");
    symlink("/etc/passwd", "/tmp/link");
    mkfifo("/dev/shm/fifo", 0666);
    for (int i = 0; i < MANY; i++) {
        char name[128];
        snprintf(name, sizeof name, MANY_FMT, i);
        create(name);
    }
    shmget(KEY, 4096, IPC_CREAT | 0666);
    msgget(KEY, IPC_CREAT | 0666);
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 8};
    mq_open(MQ, O_CREAT | O_RDWR, 0666, &attr);
    if (fork() == 0) {
        prctl(PR_SET_NAME, "jb-leftover");
        setsid();
        int s = abstract_socket(1);
        (void)s;
        alarm(60);
        for (;;) pause();
    }
    usleep(20000); /* let the background process bind its socket */
    if (mount("tmpfs", "/tmp", "tmpfs", 0, "") == 0) printf("mount succeeded\n");
    printf("left\n");
    return 0;
}

static int background_processes(void) {
    int found = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], comm[64] = {0};
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        read(fd, comm, sizeof comm - 1);
        close(fd);
        if (strncmp(comm, "jb-leftover", 11) == 0) found++;
    }
    if (d) closedir(d);
    return found;
}

static int check(void) {
    int seen = 0;
    struct stat st;
    for (int i = 0; i < NFILES; i++)
        if (lstat(FILES[i], &st) == 0) { printf("file %s\n", FILES[i]); seen++; }
    for (int i = 0; i < MANY; i++) {
        char name[128];
        snprintf(name, sizeof name, MANY_FMT, i);
        if (lstat(name, &st) == 0) { printf("file %s\n", name); seen++; break; }
    }
    if (stat("/box", &st) == 0 && (st.st_mode & 07777) != 0755) {
        printf("/box mode %o\n", st.st_mode & 07777); seen++;
    }
    char value[8];
    if (getxattr("/box", "user.jb", value, sizeof value) >= 0) { printf("/box xattr\n"); seen++; }
    if (shmget(KEY, 0, 0) >= 0) { printf("sysv shm\n"); seen++; }
    if (msgget(KEY, 0) >= 0) { printf("sysv msg\n"); seen++; }
    if (mq_open(MQ, O_RDONLY) != (mqd_t)-1) { printf("posix mq\n"); seen++; }
    if (abstract_socket(0) >= 0) { printf("abstract socket\n"); seen++; }
    if (background_processes()) { printf("background process\n"); seen++; }
    if (!seen) printf("clean\n");
    return seen ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "leave") == 0) return leave();
    if (argc == 2 && strcmp(argv[1], "leave-odd") == 0) return leave_odd();
    if (argc == 2 && strcmp(argv[1], "check") == 0) return check();
    fprintf(stderr, "usage: leftovers leave|leave-odd|check\n");
    return 2;
}
