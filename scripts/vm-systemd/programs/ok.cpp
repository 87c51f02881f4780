// a + b with <cstdio> only: compiles in a few seconds even under TCG.
#include <cstdio>
int main() {
    long a, b;
    if (std::scanf("%ld %ld", &a, &b) == 2) std::printf("%ld\n", a + b);
}
