// A fork bomb that never stops trying: contained by the pids limit, ends at the wall time.
#include <unistd.h>
int main() {
    for (;;) fork();
}
