# Runs across a `systemctl daemon-reload`, then answers.
import sys, time
a, b = map(int, sys.stdin.read().split())
time.sleep(6)
print(a + b)
