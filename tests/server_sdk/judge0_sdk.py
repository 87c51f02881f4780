"""The official Judge0 Python SDK (`judge0` on PyPI) against `judgebox serve`.

    python judge0_sdk.py http://127.0.0.1:PORT

Python, C++ and Java with test cases (accepted and wrong answer), a batch of 42
submissions (all accepted), a compilation error and a time limit. Prints "ok" at the end.
"""
import sys

import judge0
from judge0 import Client, LanguageAlias, Status

client = Client(sys.argv[1])
assert client.version == "1.13.1", client.version
assert client.config.max_queue_size > 0

PY = "a, b = map(int, input().split())\nprint(a + b)\n"
CPP = "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << std::endl; }\n"
JAVA = (
    "import java.util.*;\npublic class Main { public static void main(String[] x) {"
    " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }\n"
)
CASES = [("1 2", "3"), ("2 2", "5")]

for language, source in [(LanguageAlias.PYTHON, PY), (LanguageAlias.CPP, CPP), (LanguageAlias.JAVA, JAVA)]:
    results = judge0.run(client=client, source_code=source, language=language, test_cases=CASES)
    statuses = [r.status for r in results]
    assert statuses == [Status.ACCEPTED, Status.WRONG_ANSWER], (language, statuses, results)
    assert results[0].stdout == "3\n", results[0]
    assert results[0].time is not None and results[0].memory is not None, results[0]

batch = judge0.run(
    client=client,
    source_code=PY,
    language=LanguageAlias.PYTHON,
    test_cases=[(f"{i} {i * 2}", str(i * 3)) for i in range(42)],
)
assert len(batch) == 42
bad = [r for r in batch if r.status != Status.ACCEPTED]
assert not bad, bad

ce = judge0.run(client=client, source_code="int main( {", language=LanguageAlias.CPP)
assert ce.status == Status.COMPILATION_ERROR, ce
assert "error" in ce.compile_output, ce.compile_output

tle = judge0.run(client=client, source_code="while True: pass\n", language=LanguageAlias.PYTHON, cpu_time_limit=1)
assert tle.status == Status.TIME_LIMIT_EXCEEDED, tle

print("ok")
