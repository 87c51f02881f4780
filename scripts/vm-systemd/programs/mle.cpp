// Touches 200 MiB page by page: memory_limit under --memory 64M.
#include <cstdio>
#include <vector>
int main() {
    std::vector<char> v(200u << 20);
    long sum = 0;
    for (size_t i = 0; i < v.size(); i += 4096) v[i] = (char)i;
    for (size_t i = 0; i < v.size(); i += 4096) sum += v[i];
    std::printf("%ld\n", sum);
}
