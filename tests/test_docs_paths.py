"""Every repository path the README and the `--help` texts name exists (a user copies them verbatim)."""

from __future__ import annotations

import argparse
import re

from conftest import ROOT

# paths under the repository's own folders, and the Dockerfile; `./x`, `runs/...` and the like are the user's
REPO_PATH = re.compile(
    r"(?<![\w./~$-])((?:configs|examples|inkagent|scripts|benchmarks|tests|docs|\.ci)/[\w./-]*\w|Dockerfile\b)"
)
DOCKER_BUILD_HERE = re.compile(r"docker build\b[^\n]*\s\.(?:\s|$)")


def repository_paths(text: str) -> set[str]:
    found = set(REPO_PATH.findall(text))
    if DOCKER_BUILD_HERE.search(text):
        found.add("Dockerfile")  # `docker build .` needs one
    return found


def help_texts() -> dict[str, str]:
    from inkagent.cli import build_parser

    texts: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        texts[name] = parser.format_help()
        for action in parser._actions:  # argparse keeps subcommands only here
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(sub, f"{name} {sub_name}")

    walk(build_parser(), "inkagent")
    return texts


def test_the_path_finder_finds_what_it_should():
    text = "see configs/demo.yaml, `examples/plugins/README.md`; docker build -t x .\n./my_tools.py runs/a.jsonl"
    assert repository_paths(text) == {"configs/demo.yaml", "examples/plugins/README.md", "Dockerfile"}


def test_every_path_the_readme_names_exists():
    named = repository_paths((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "configs/demo.yaml" in named  # the finder works on the real text
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"README.md names files that do not exist: {missing}"


def test_every_path_a_help_text_names_exists():
    texts = help_texts()
    assert {"inkagent", "inkagent run", "inkagent bench", "inkagent trace show"} <= set(texts)
    missing = {
        f"{command}: {path}"
        for command, text in texts.items()
        for path in repository_paths(text)
        if not (ROOT / path).exists()
    }
    assert not missing, f"--help texts name files that do not exist: {sorted(missing)}"
