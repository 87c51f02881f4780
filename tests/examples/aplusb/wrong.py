# A + B with a bug: wrong when the sum is negative (quickstart shows a wrong answer).
a, b = map(int, input().split())
print(abs(a + b))
