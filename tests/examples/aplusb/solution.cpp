// A + B: read two integers, print their sum. The example submission scripts/quickstart.sh judges.
#include <iostream>

int main() {
    long long a, b;
    std::cin >> a >> b;
    std::cout << a + b << '\n';
}
