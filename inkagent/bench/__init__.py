"""Tool-call accuracy benchmarks: BFCL v4 single-turn and inkagent-tools, scored like BFCL's checker.

- `bfcl.score(category, question, answer, raw_output, mode)`: the official checker's verdict on one record;
- `datasets.load_suite(...)`: the bundled suites; `render`: ground truth written as a model would;
- `harness.run_benchmark(...)`: run a backend over a suite (threads, resumable results, report);
- `report`: per-category accuracy, BFCL's aggregates, Markdown / JSON / rich output.

`inkagent bench CONFIG --suite bfcl|inkagent-tools` is the command-line front end.
"""
