// Touches 200 MiB page by page: memory_limit under --memory 64M. Plain C headers and
// volatile stores, so g++ neither drops the stores nor takes long under TCG.
#include <cstdio>
#include <cstdlib>
int main() {
    const unsigned long n = 200ul << 20;
    volatile char *p = static_cast<volatile char *>(std::malloc(n));
    if (!p) return 3;
    for (unsigned long i = 0; i < n; i += 4096) p[i] = 1;
    std::printf("%d\n", p[n - 4096]);
}
