#!/usr/bin/env python3
"""Checks the man pages (man/*.rst) against docutils and the programs' --help.

1. Every man/*.rst converts with rst2man without any warning or error
   (--report=2 --halt=2, and any output on stderr counts as a failure).
   If groff is installed, the generated page is also formatted with
   `groff -man -ww -z` and its warnings count too.
2. For every program given with --program NAME=PATH (skipped when PATH is not
   built), `PATH --help` is run, and recursively `PATH SUB --help` for every
   subcommand CLI11 lists. Every long option and subcommand name shown there
   must appear in man/NAME.<section>.rst. -h/--help itself is exempt: CLI11
   adds it to every command.

Exit status: 0 all good, 1 problems (each listed), 77 rst2man missing (meson
counts it as skipped). Python 3 standard library only.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
EXEMPT = {'--help', '--version'}
OPTION_RX = re.compile(r'(?<![\w-])(--[A-Za-z][\w-]*)')


def find_rst2man():
    for name in ('rst2man', 'rst2man.py'):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def check_rst(rst2man, rst, problems):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, os.path.basename(rst)[:-4])
        r = subprocess.run(rst2man + ['--report=2', '--halt=2', '--exit-status=2', rst, out],
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            problems.append(f'{rst}: rst2man exit {r.returncode}:\n{r.stderr.strip()}')
            return
        groff = shutil.which('groff')
        if groff:
            g = subprocess.run([groff, '-man', '-Tutf8', '-ww', '-z', out],
                               capture_output=True, text=True)
            if g.returncode != 0 or g.stderr.strip():
                problems.append(f'{rst}: groff warnings:\n{g.stderr.strip()}')


def subcommands(help_text):
    """Subcommand names from a CLI11 help text ("Subcommands:" section)."""
    names, in_section = [], False
    for line in help_text.splitlines():
        if re.match(r'^\s*subcommands:\s*$', line, re.I):
            in_section = True
            continue
        if in_section:
            if not line.strip():
                continue
            if not line.startswith(' '):
                in_section = False
                continue
            names.append(line.split()[0])
    return names


def help_items(program, prefix, problems, depth=0):
    """(command words, option or subcommand) pairs from --help, recursively."""
    cmd = [program] + prefix + ['--help']
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        problems.append(f'{" ".join(cmd)}: {e}')
        return []
    text = r.stdout + r.stderr
    if r.returncode != 0:
        problems.append(f'{" ".join(cmd)} exited {r.returncode}:\n{text.strip()}')
        return []
    items = [(prefix, opt) for opt in sorted(set(OPTION_RX.findall(text))) if opt not in EXEMPT]
    if depth < 3:
        for sub in subcommands(text):
            items.append((prefix, sub))
            items += help_items(program, prefix + [sub], problems, depth + 1)
    return items


def mentioned(text, word):
    return re.search(r'(?<![\w-])' + re.escape(word) + r'(?![\w-])', text) is not None


def check_program(name, path, man_dir, problems):
    pages = glob.glob(os.path.join(man_dir, name + '.[0-9]*.rst'))
    if not pages:
        problems.append(f'{name}: no man page {man_dir}/{name}.<section>.rst')
        return
    with open(pages[0], encoding='utf-8') as f:
        text = f.read()
    items = help_items(path, [], problems)
    for prefix, word in items:
        if not mentioned(text, word):
            where = ' '.join([name] + prefix) + ' --help'
            problems.append(f'{pages[0]}: "{word}" (shown by {where}) is not documented')
    print(f'{name}: {len(items)} options/subcommands checked against {pages[0]}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--man-dir', required=True)
    ap.add_argument('--program', action='append', default=[], metavar='NAME=PATH')
    args = ap.parse_args()

    rst2man = find_rst2man()
    if not rst2man:
        print('SKIP: rst2man not found (apt install python3-docutils)')
        return SKIP
    problems = []
    pages = sorted(glob.glob(os.path.join(args.man_dir, '*.rst')))
    for rst in pages:
        check_rst(rst2man, rst, problems)
    print(f'{len(pages)} man pages converted')
    for spec in args.program:
        name, _, path = spec.partition('=')
        if not os.access(path, os.X_OK):
            print(f'{name}: not built ({path}), skipped')
            continue
        check_program(name, path, args.man_dir, problems)
    for p in problems:
        print('PROBLEM: ' + p)
    print(f'{len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
