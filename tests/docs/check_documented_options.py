#!/usr/bin/env python3
"""One CLI vocabulary (issue 17): every option that README.md or docs/*.md shows on a
`facebatch <command>` line of a code block exists in that command's --help.

Usage: check_documented_options.py FACEBATCH_BINARY SOURCE_DIR
Exit 0 when every documented option exists, 1 with the list of those that do not."""
import glob
import os
import re
import subprocess
import sys

SUBCOMMANDS = {"export": ("obj", "ply", "glb", "maps", "overlay", "preview"), "model": ("init", "info")}


def documented(path):
    text = open(path, encoding="utf-8").read()
    found = {}
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")  # shell line continuations
        for line in block.splitlines():
            for m in re.finditer(r"facebatch\s+([a-z][a-z-]*)(?:\s+([a-z]+))?([^|;&#]*)", line):
                cmd, sub, rest = m.group(1), m.group(2), m.group(3)
                name = cmd
                if cmd in SUBCOMMANDS and sub in SUBCOMMANDS[cmd]:
                    name = f"{cmd} {sub}"
                elif sub:
                    rest = sub + rest
                for opt in re.findall(r"(?<![\w-])--([a-z][a-z0-9_.-]*)", rest):
                    found.setdefault(name, set()).add(opt)
    return found


def main():
    binary, root = sys.argv[1], sys.argv[2]
    files = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    wanted = {}
    for f in files:
        for cmd, opts in documented(f).items():
            for o in opts:
                wanted.setdefault(cmd, {}).setdefault(o, set()).add(os.path.relpath(f, root))
    missing, count = [], 0
    for cmd, opts in sorted(wanted.items()):
        r = subprocess.run([binary] + cmd.split() + ["--help"], capture_output=True, text=True)
        help_text = r.stdout + r.stderr
        if "Usage" not in help_text and "usage" not in help_text:
            missing.append(f"facebatch {cmd}: not a command (from {', '.join(sorted(set().union(*opts.values())))})")
            continue
        for o, where in sorted(opts.items()):
            count += 1
            if not re.search(r"(?<![\w-])--" + re.escape(o) + r"(?![\w-])", help_text):
                missing.append(f"facebatch {cmd} --{o}: not in its --help (documented in {', '.join(sorted(where))})")
    if missing:
        print("\n".join(missing))
        return 1
    print(f"documented options: {count} options of {len(wanted)} commands, all in --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
