#!/usr/bin/env python3
"""Checks that the man pages and the program agree (tests/integration/man_pages.sh).

usage: mancheck.py PGFLIP DOC_DIR CONF_C INI_EXAMPLE

Everything is found, not listed here, so that a new subcommand, option or
config key shows up as a mismatch by itself:
  - the commands: `pgflip --help` lines "pgflip WORD", each WORD's --help,
    the COMMAND words of `pgflip migrate --help` (each run with --help too)
    and of `pgflip ctl --help`;
  - the options: every -x / --word any of those --help outputs names;
  - the config keys: every {"KEY", CONF_KIND_...} of the [pgflip] table in
    conf/conf.c.
Then: every option a --help names is in pgflip(1) and every option pgflip(1)
names is in some --help; every command word has a **WORD** entry in
pgflip(1); every config key is a term of pgflip.ini(5)'s [PGFLIP] SECTION,
every term there is a key, and the example conf/pgflip.ini shows each key.
Prints TAP lines ("ok - ...", "not ok - ..." with the mismatches).
"""
import re
import subprocess
import sys

OPTION = re.compile(r"(?<![\w$/.\\-])(--?[A-Za-z][A-Za-z0-9-]*)")
failures = 0


def tap(ok, name, detail=""):
    global failures
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        failures += 1
        for line in detail.splitlines():
            print("    # " + line)


def run_help(pgflip, args):
    """The --help output of `pgflip ARGS --help`, and whether it exited 0."""
    p = subprocess.run([pgflip] + args + ["--help"], capture_output=True, text=True)
    return p.stdout + p.stderr, p.returncode == 0


def top_commands(text):
    return sorted(set(re.findall(r"^\s+pgflip ([a-z]+)\b", text, re.M)))


def migrate_commands(text):
    """The words of the "commands:" block of `pgflip migrate --help`."""
    block = re.search(r"^commands:\n(.*?)^(?:options:|\S)", text, re.M | re.S)
    return sorted(set(re.findall(r"^  ([a-z][a-z-]*)\b", block.group(1), re.M))) if block else []


def ctl_commands(text):
    """The first word of each comma-separated item after "commands:" of `pgflip ctl --help`."""
    m = re.search(r"commands:(.*)", text, re.S)
    if not m:
        return []
    body = re.sub(r"\(words after COMMAND.*?\)", "", m.group(1), flags=re.S)
    words = set()
    for item in body.split(","):
        w = re.match(r"\s*([a-z]+)\b", item)
        if w:
            words.add(w.group(1))
    return sorted(words)


def md_text(path):
    with open(path) as f:
        return f.read().replace("\\", "")


def options_of(text):
    return set(OPTION.findall(text))


def section(text, title):
    """The lines of the markdown section "# TITLE" up to the next "# "."""
    m = re.search(r"^# " + re.escape(title) + r"\n(.*?)(?=^# |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def main():
    pgflip, doc, conf_c, ini = sys.argv[1:5]
    man1 = md_text(doc + "/pgflip.1.md")
    man5 = md_text(doc + "/pgflip.ini.5.md")

    top, ok = run_help(pgflip, [])
    tap(ok, "pgflip --help exits 0")
    helps = {"pgflip": top}
    cmds = top_commands(top)
    tap(len(cmds) >= 3, "pgflip --help names its commands: " + " ".join(cmds))
    for c in cmds:
        text, ok = run_help(pgflip, [c])
        tap(ok, "pgflip %s --help exits 0" % c, text)
        helps["pgflip " + c] = text
    subs = migrate_commands(helps.get("pgflip migrate", ""))
    tap(len(subs) >= 5, "pgflip migrate --help names its commands: " + " ".join(subs))
    for s in subs:
        text, ok = run_help(pgflip, ["migrate", s])
        tap(ok, "pgflip migrate %s --help exits 0" % s, text)
        helps["pgflip migrate " + s] = text
    admin = ctl_commands(helps.get("pgflip ctl", ""))
    tap(len(admin) >= 10, "pgflip ctl --help names the admin commands: " + " ".join(admin))

    documented = options_of(man1)
    named = set()
    for who, text in sorted(helps.items()):
        opts = options_of(text)
        named |= opts
        missing = sorted(opts - documented)
        tap(not missing, "every option of `%s --help` is in pgflip(1)" % who,
            "not in doc/pgflip.1.md: " + " ".join(missing))
    extra = sorted(documented - named)
    tap(not extra, "every option pgflip(1) names is in a --help", "in no --help output: " + " ".join(extra))

    entries = set(re.findall(r"\*\*([a-z][a-z-]*)\*\*", man1))
    for kind, words in (("command", cmds), ("migrate command", subs), ("admin command", admin)):
        missing = sorted(set(words) - entries)
        tap(not missing, "every %s has a **WORD** entry in pgflip(1)" % kind, "missing: " + " ".join(missing))

    with open(conf_c) as f:
        keys = set(re.findall(r'^\s*\{"([a-z_][a-z0-9_]*)", CONF_KIND_', f.read(), re.M))
    tap(len(keys) >= 40, "conf/conf.c's [pgflip] keys found: %d" % len(keys))
    terms = set()
    for line in section(man5, "[PGFLIP] SECTION").splitlines():
        if line.startswith("**"):
            terms |= set(re.findall(r"\*\*([a-z_][a-z0-9_]*)\*\*", line))
    missing, stale = sorted(keys - terms), sorted(terms - keys)
    tap(not missing, "every config key the parser accepts is in pgflip.ini(5)", "not documented: " + " ".join(missing))
    tap(not stale, "every key pgflip.ini(5) documents is one the parser accepts", "no such key: " + " ".join(stale))
    with open(ini) as f:
        shown = set(re.findall(r"^;*\s*([a-z_][a-z0-9_]*)\s*=", f.read(), re.M))
    missing = sorted(keys - shown)
    tap(not missing, "conf/pgflip.ini shows every key", "not in conf/pgflip.ini: " + " ".join(missing))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
