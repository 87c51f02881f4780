/* segv: dereference a null pointer (SIGSEGV). */
int main(void) {
    volatile int *p = 0;
    return *p;
}
