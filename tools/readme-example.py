#!/usr/bin/env python3
"""Writes scenarios/readme-example.json: the README's annotated scenario without its // notes.

tests/test_cli.cpp checks that the two agree; rerun after editing the README's example:

    tools/readme-example.py && tools/update-expected.sh scenarios/readme-example.json
"""
import json
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def strip_notes(text):
    """Drops // to the end of the line, outside JSON strings."""
    out = []
    for line in text.splitlines():
        in_string, i = False, 0
        while i < len(line):
            c = line[i]
            if c == "\\" and in_string:
                i += 2
                continue
            if c == '"':
                in_string = not in_string
            if not in_string and line.startswith("//", i):
                line = line[:i]
                break
            i += 1
        out.append(line)
    return "\n".join(out)


def main():
    readme = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"```jsonc\n(.*?)```", readme, re.S).group(1)
    doc = json.loads(strip_notes(block))
    with open(os.path.join(ROOT, "scenarios", "readme-example.json"), "w") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
