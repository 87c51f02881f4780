# 200 MiB: memory_limit under --memory 64M (not MemoryError: cgroup, not RLIMIT_AS).
a = bytearray(200 << 20)
for i in range(0, len(a), 4096):
    a[i] = 1
print(sum(a[::4096]))
