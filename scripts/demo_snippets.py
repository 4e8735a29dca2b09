"""More Python snippets for the demo model's "code given by the user" turns (training only).

`ConversationGenerator(code_variety=p)` draws a share `p` of its user-code turns from here instead of its
own short list (`ConversationGenerator.snippet` / `long_snippet`, which the held-out conversations use).
The point is breadth: loops, conditions, functions, string methods and code that never ends, each with
random values, so that copying code exactly as given is what the model learns, not a list of texts.

Every snippet carries random values, and the caller keeps only those whose text falls in the training
partition (`demo_dialogues.held_out`), so no snippet of the held-out conversations is trained on; the
fixed ones of the held-out lists (`while True: pass`) are not here.
"""

from __future__ import annotations

import random
import string

from demo_dialogues import WORDS


def _word(rng: random.Random) -> str:
    """A dictionary word or a string of random letters (copying, not recall)."""
    if rng.random() < 0.5:
        return rng.choice(WORDS)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))


def varied_snippet(rng: random.Random) -> str:
    """Code that finishes at once and prints a short text (or fails with a short error)."""
    a, b, c = rng.randint(1, 9999), rng.randint(1, 999), rng.randint(2, 60)
    n = rng.randint(2, 9)
    w, v = _word(rng), _word(rng)
    ch = rng.choice(w)
    name = rng.choice(["x", "n", "total", "value", "count", "k", "num", "result"])
    templates = [
        f"print('{w}'.upper())",
        f"print('{w}'.title())",
        f"print('{w}' + '{v}')",
        f"print('{w}', '{v}')",
        f"print('{w}'.count('{ch}'))",
        f"print('{w}'.replace('{ch}', '-'))",
        f"print('{w}'[::-1].upper())",
        f"s = '{w}'; print(s[::-1])",
        f"{name} = '{w}'\nprint({name}[::-1])",
        f"print('{w}' * {rng.randint(2, 4)})",
        f"print('{w}'[:{rng.randint(1, 4)}])",
        f"print(sorted('{w}'))",
        f"print(len('{w} {v}'.split()))",
        f"print('-'.join(['{w}', '{v}']))",
        f"for ch in '{w}': print(ch)",
        f"print(sorted([{a}, {b}, {c}]))",
        f"print(max({a}, {b}, {c}))",
        f"print(abs({b} - {a}))",
        f"print(round({a} / {b}, 2))",
        f"print({a} ** 2)",
        f"print(bin({c}))",
        f"print(hex({a}))",
        f"print(list(range({n}, {n + c})))" if c < 12 else f"print(list(range({n})))",
        f"print(list(reversed(range({n}))))",
        f"{name} = {a}\n{name} += {b}\nprint({name})",
        f"{name} = {a}\nif {name} > {b}:\n    print('{w}')\nelse:\n    print('{v}')",
        f"{name} = {a}; print({name} % 2 == 0)",
        f"f = lambda x: x + {c}\nprint(f({a}))",
        f"def g(a, b):\n    return a * b\n\nprint(g({a}, {b}))",
        f"{name} = 0\nfor i in range({c}):\n    {name} += i\nprint({name})",
        f"{name} = [{a}, {b}, {c}]\n{name}.append({n})\nprint({name})",
        f"d = {{'{w}': {a}}}\nprint(d['{w}'])",
        f"try:\n    print({a} / 0)\nexcept ZeroDivisionError:\n    print('{w}')",
        f"i = {n}\nwhile i > 0:\n    print(i)\n    i -= {rng.randint(1, 3)}",
        f"print(int('{a}') + {b})",
        f"print([{a}, {b}][{n}])",
        f"print({name})",
        f"import math\nprint(math.gcd({a}, {b}))",
    ]
    return rng.choice(templates)


def varied_long_snippet(rng: random.Random) -> tuple[str, bool]:
    """Code that runs past the interpreter's time limit, and whether an interrupt stops it (else the
    kernel is restarted), as `ConversationGenerator.long_snippet`."""
    s = rng.randint(25, 9999)
    k = rng.randint(10, 15)
    n = rng.randint(1, 999)
    name = rng.choice(["x", "n", "i", "count", "k", "total"])
    return rng.choice(
        [
            (f"while True: {name} = {n}", True),
            (f"{name} = 0\nwhile True:\n    {name} += {n}", True),
            (f"while {n} > 0: pass", True),
            (f"{name} = {n}\nwhile {name}: pass", True),
            (
                rng.choice(
                    ["while 1: pass", "while not False: pass", "while True: continue", "while 2 > 1: pass"]
                ),
                True,
            ),
            (f"while True:\n    {name} = {n}", True),
            (f"{name} = {n}\nwhile {name} > 0:\n    {name} += 1", True),
            (f"import time\nwhile True:\n    time.sleep({rng.randint(1, 9)})", True),
            (f"from time import sleep\nsleep({s})", True),
            (f"import time; time.sleep({s}); print({n})", True),
            (f"for i in range(10**{k}): pass", True),
            (f"print(sum(i * i for i in range(10**{k})))", True),
            (f"print(max(range(10**{k})))", False),
        ]
    )
