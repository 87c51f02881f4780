/*
 * seccomp_probe: tries the system calls a judge sandbox must deny, and a few it must
 * allow, and prints one line per probe:
 *
 *     NAME errno=N        (N = 0 when the call succeeded)
 *
 * Usage: seccomp_probe all | list | NAME...
 * Build: gcc -static -pthread -O2 -o seccomp_probe seccomp_probe.c
 *
 * Arguments are chosen so that a call that gets past the filter fails harmlessly in the
 * kernel (EFAULT, EBADF, EINVAL, ESRCH, ...) or only changes this process, even when run
 * as root without any filter. errno=1 (EPERM) therefore means the filter refused the call
 * (or, without capabilities, the kernel's own permission check did). Each line is written
 * with write(2) as soon as the probe returns, so the lines before a SIGSYS kill survive.
 * `all` runs the probes that change this process (unshare, personality, an extra seccomp
 * filter) last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef TIOCSTI
#define TIOCSTI 0x5412
#endif
#define NETLINK_ROUTE 0
#define NETLINK_AUDIT 9
#define NETLINK_KOBJECT_UEVENT 15
#define HIGH_BIT (1UL << 32)

/* An invalid user pointer: the kernel answers EFAULT when it gets that far. */
#define BAD ((void *)1)

/* errno of a raw syscall, or 0 on success. */
#define SC(...) (syscall(__VA_ARGS__) < 0 ? (long)errno : 0L)

static long fd_result(long fd)
{
    if (fd < 0)
        return errno;
    close((int)fd);
    return 0;
}

/* For clone-like calls: the child leaves at once, the parent reaps it. */
static long fork_result(long pid)
{
    if (pid == 0)
        _exit(0);
    if (pid < 0)
        return errno;
    waitpid((pid_t)pid, NULL, 0);
    return 0;
}

/* ---- calls the judge default must deny -------------------------------------------- */

static long p_mount(void) { return SC(SYS_mount, NULL, NULL, NULL, 0, NULL); }
static long p_umount2(void) { return SC(SYS_umount2, BAD, 0); }
static long p_pivot_root(void) { return SC(SYS_pivot_root, BAD, BAD); }
static long p_chroot(void) { return SC(SYS_chroot, BAD); }
static long p_setns(void) { return SC(SYS_setns, -1, CLONE_NEWNET); }
static long p_ptrace(void) { return SC(SYS_ptrace, PTRACE_PEEKDATA, 0x7ffffff0, 0, 0); }
static long p_process_vm_readv(void) { return SC(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 1); }
static long p_process_vm_writev(void) { return SC(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 1); }
static long p_bpf(void) { return SC(SYS_bpf, -1, NULL, 0); }
static long p_perf_event_open(void) { return SC(SYS_perf_event_open, NULL, 0, -1, -1, 0); }
static long p_keyctl(void) { return SC(SYS_keyctl, -1, 0, 0, 0, 0); }
static long p_add_key(void) { return SC(SYS_add_key, NULL, NULL, NULL, 0, 0); }
static long p_request_key(void) { return SC(SYS_request_key, NULL, NULL, NULL, 0); }
static long p_io_uring_setup(void) { return SC(SYS_io_uring_setup, 0, NULL); }
static long p_io_uring_enter(void) { return SC(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long p_io_uring_register(void) { return SC(SYS_io_uring_register, -1, 0, NULL, 0); }
static long p_userfaultfd(void) { return SC(SYS_userfaultfd, -1); }
static long p_kexec_load(void) { return SC(SYS_kexec_load, 0, 0, NULL, 0xffffffffUL); }
static long p_kexec_file_load(void) { return SC(SYS_kexec_file_load, -1, -1, 0, NULL, 0xffffffffUL); }
static long p_init_module(void) { return SC(SYS_init_module, NULL, 0, NULL); }
static long p_finit_module(void) { return SC(SYS_finit_module, -1, "", 0); }
static long p_delete_module(void) { return SC(SYS_delete_module, BAD, 0); }
static long p_reboot(void) { return SC(SYS_reboot, 0, 0, 0, NULL); /* bad magic: EINVAL */ }
static long p_swapon(void) { return SC(SYS_swapon, BAD, 0); }
static long p_swapoff(void) { return SC(SYS_swapoff, BAD); }
static long p_clock_settime(void) { return SC(SYS_clock_settime, CLOCK_REALTIME, BAD); }
static long p_settimeofday(void) { return SC(SYS_settimeofday, BAD, NULL); }
static long p_adjtimex(void) { return SC(SYS_adjtimex, BAD); }
static long p_clock_adjtime(void) { return SC(SYS_clock_adjtime, CLOCK_REALTIME, BAD); }
static long p_open_by_handle_at(void) { return SC(SYS_open_by_handle_at, -1, BAD, 0); }
static long p_name_to_handle_at(void) { return SC(SYS_name_to_handle_at, -1, BAD, BAD, BAD, 0); }
static long p_socket_vsock(void) { return fd_result(socket(AF_VSOCK, SOCK_STREAM, 0)); }
/* AF_VSOCK with a high bit set: the kernel reads the family as a 32-bit int. */
static long p_socket_vsock_high_bits(void) { return fd_result(syscall(SYS_socket, (long)AF_VSOCK | HIGH_BIT, SOCK_STREAM, 0)); }
static long p_socket_alg(void) { return fd_result(socket(AF_ALG, SOCK_SEQPACKET, 0)); }
static long p_socket_packet(void) { return fd_result(socket(AF_PACKET, SOCK_RAW, 0)); }
static long p_socket_netlink_audit(void) { return fd_result(socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT)); }
static long p_socket_netlink_uevent(void) { return fd_result(socket(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT)); }
static long p_clone_newuser(void) { return fork_result(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)); }
static long p_clone_newns(void) { return fork_result(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0)); }
/* clone flags with a high bit: the kernel keeps only the low 32 bits. */
static long p_clone_newnet_high_bits(void) { return fork_result(syscall(SYS_clone, HIGH_BIT | CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)); }
static long p_ioctl_tiocsti(void) { return SC(SYS_ioctl, -1, TIOCSTI, BAD); }
static long p_ioctl_tiocsti_high_bits(void) { return SC(SYS_ioctl, -1, HIGH_BIT | TIOCSTI, BAD); }
static long p_personality_high_bits(void) { return SC(SYS_personality, HIGH_BIT | ADDR_NO_RANDOMIZE); }

#if defined(__x86_64__)
/* x32 ABI: x86_64 numbers with bit 30 set (ENOSYS from a kernel without x32). */
static long p_x32_getpid(void) { return SC(SYS_getpid | 0x40000000); }

/* i386 ABI through int 0x80 (getpid is 20 there). */
static long p_i386_getpid(void)
{
    long ret = 20;
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
    return ret < 0 && ret > -4096 ? -ret : 0;
}
#endif

/* ---- calls ordinary programs need ------------------------------------------------- */

static long p_getpid(void) { return SC(SYS_getpid); }
static long p_clock_gettime(void) { struct timespec t; return clock_gettime(CLOCK_MONOTONIC, &t) ? errno : 0; }
static long p_socket_unix(void) { return fd_result(socket(AF_UNIX, SOCK_STREAM, 0)); }
static long p_socket_inet(void) { return fd_result(socket(AF_INET, SOCK_STREAM, 0)); }
static long p_socket_inet6(void) { return fd_result(socket(AF_INET6, SOCK_DGRAM, 0)); }
static long p_socket_netlink_route(void) { return fd_result(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)); }

static long p_socketpair_unix(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return errno;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static long p_fork(void) { return fork_result(fork()); }
static long p_clone(void) { return fork_result(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }
/* clone3 must answer ENOSYS (38), so that libc falls back to clone. */
static long p_clone3(void) { return SC(SYS_clone3, NULL, 0); }

static void *thread_main(void *arg) { return arg; }

static long p_pthread_create(void)
{
    pthread_t t;
    int e = pthread_create(&t, NULL, thread_main, NULL);
    if (e != 0)
        return e;
    return pthread_join(t, NULL);
}

static long p_mmap_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return errno;
    long r = mprotect(p, 4096, PROT_READ | PROT_EXEC) ? errno : 0;
    munmap(p, 4096);
    return r;
}

static long p_personality_query(void) { return SC(SYS_personality, 0xffffffffUL); }

/* ---- probes that change this process: run last by `all` --------------------------- */

static long p_unshare(void) { return SC(SYS_unshare, CLONE_NEWUSER | CLONE_NEWNS); }
static long p_personality_addr_no_randomize(void) { return SC(SYS_personality, ADDR_NO_RANDOMIZE); }

/* Installs an allow-everything filter on top, then tries mount: filters only stack. */
static long p_loosen_then_mount(void)
{
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    return p_mount();
}

struct probe {
    const char *name;
    long (*run)(void);
};

#define P(n) {#n, p_##n}

static const struct probe probes[] = {
    P(mount), P(umount2), P(pivot_root), P(chroot), P(setns), P(ptrace),
    P(process_vm_readv), P(process_vm_writev), P(bpf), P(perf_event_open), P(keyctl),
    P(add_key), P(request_key), P(io_uring_setup), P(io_uring_enter), P(io_uring_register),
    P(userfaultfd), P(kexec_load), P(kexec_file_load), P(init_module), P(finit_module),
    P(delete_module), P(reboot), P(swapon), P(swapoff), P(clock_settime), P(settimeofday),
    P(adjtimex), P(clock_adjtime), P(open_by_handle_at), P(name_to_handle_at),
    P(socket_vsock), P(socket_vsock_high_bits), P(socket_alg), P(socket_packet),
    P(socket_netlink_audit), P(socket_netlink_uevent), P(clone_newuser), P(clone_newns),
    P(clone_newnet_high_bits), P(ioctl_tiocsti), P(ioctl_tiocsti_high_bits),
    P(personality_high_bits),
#if defined(__x86_64__)
    P(x32_getpid), P(i386_getpid),
#endif
    P(getpid), P(clock_gettime), P(socket_unix), P(socket_inet), P(socket_inet6),
    P(socket_netlink_route), P(socketpair_unix), P(fork), P(clone), P(clone3),
    P(pthread_create), P(mmap_exec), P(personality_query),
    P(unshare), P(personality_addr_no_randomize), P(loosen_then_mount),
};

#define NPROBES (sizeof probes / sizeof probes[0])

static void say(const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(1, text, len);
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

static void run(const struct probe *p)
{
    char line[128];
    long err = p->run();
    snprintf(line, sizeof line, "%s errno=%ld\n", p->name, err);
    say(line);
}

static const struct probe *find(const char *name)
{
    for (size_t i = 0; i < NPROBES; i++)
        if (strcmp(probes[i].name, name) == 0)
            return &probes[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s all | list | NAME...\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "list") == 0) {
        for (size_t i = 0; i < NPROBES; i++) {
            say(probes[i].name);
            say("\n");
        }
        return 0;
    }
    if (strcmp(argv[1], "all") == 0) {
        for (size_t i = 0; i < NPROBES; i++)
            run(&probes[i]);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const struct probe *p = find(argv[i]);
        if (p == NULL) {
            fprintf(stderr, "%s: unknown probe %s (try: %s list)\n", argv[0], argv[i], argv[0]);
            return 2;
        }
        run(p);
    }
    return 0;
}
