# SPDX-License-Identifier: MIT
"""The man page and the bash completion: made from one source, installed by
`make install`, and never behind the CLI (every command and option that
`pshm --help` names is in both)."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import BUILD, CLI, run  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCD = os.path.join(ROOT, "doc", "pshm.1.scd")
COMPLETION = os.path.join(ROOT, "contrib", "bash-completion", "pshm")
MODULES = {"array": ["info", "create", "load", "save"],
           "queue": ["stat", "create", "send", "recv", "close"],
           "sync": ["info", "create", "post", "wait", "set", "reset", "lock", "recover"]}


def commands():
    """The commands `pshm --help` lists."""
    out = run(["--help"]).stdout
    return [m.group(1) for m in re.finditer(r"^  pshm (\S+)", out, re.M)]


def options(cmd):
    """The options `pshm CMD --help` names."""
    text = re.sub(r"`[^`]*`", "", run([cmd, "--help"]).stdout)  # `pshm other --x`: not ours
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text)) - {"--help"})


def test_the_man_page_is_made_from_its_source():
    r = subprocess.run([os.path.join(ROOT, "scripts", "man.sh"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    version = run(["-V"]).stdout.split()[1]
    assert open(SCD).readline().startswith('pshm(1) "pshm %s"' % version)


def test_the_man_page_documents_every_command_and_option():
    page = open(SCD).read().replace("\\_", "_")
    cmds = commands()
    assert len(cmds) >= 12
    for c in cmds:
        assert re.search(r"^\*%s[* ]" % re.escape(c), page, re.M), c
        for sub in MODULES.get(c, []):
            assert "*%s %s*" % (c, sub) in page, (c, sub)
        for o in options(c):
            assert "*%s*" % o in page, (c, o)


def complete(*words):
    """What bash offers for the last word after `pshm WORDS...`."""
    script = ('source "$1"; shift; COMP_WORDS=(pshm "$@"); COMP_CWORD=$#; _pshm; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run(["bash", "-c", script, "bash", COMPLETION, *words], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return [x for x in r.stdout.splitlines() if x]


def test_bash_completion_is_registered():
    r = subprocess.run(["bash", "-c", 'source "$1"; complete -p pshm', "bash", COMPLETION],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "complete -F _pshm pshm", r


def test_bash_completes_every_command_and_option():
    assert sorted(complete("")) == sorted(commands() + ["help"])
    assert complete("li") == ["list", "list-create"]
    for c in commands():
        if c in MODULES:
            assert complete(c, "") == MODULES[c], c
            offered = set()
            for sub in MODULES[c]:
                offered |= set(complete(c, sub, "--"))
            assert set(options(c)) <= offered, (c, set(options(c)) - offered)
        else:
            assert set(options(c)) <= set(complete(c, "--")), c
    assert complete("create", "x", "1K", "--lifetime", "") == ["persist", "auto", "owned"]
    assert complete("queue", "create", "q", "--mode", "b") == ["broadcast"]
    assert complete("sync", "create", "") == ["mutex", "cond", "sem", "rwlock", "barrier", "event"]
    assert complete("help", "qu") == ["queue"]


def test_bash_completes_object_names(names):
    make, made = names
    a = make("COMPLETE")
    odd = make("with space")
    assert run(["create", a, "64"]).returncode == 0
    assert run(["create", odd, "64"]).returncode == 0
    prefix = a[: a.index("COMPLETE")]
    assert complete("info", prefix + "COM") == [a]
    assert complete("queue", "stat", prefix + "COM") == [a]
    assert complete("rm", "--", prefix + "with") == [odd.replace(" ", "\\ ")]
    assert complete("info", "--json", prefix) == sorted([a, odd.replace(" ", "\\ ")])
    run(["rm", a, odd])


def test_make_install_installs_the_man_page_and_the_completion():
    with tempfile.TemporaryDirectory() as prefix:
        subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], check=True, capture_output=True)
        man = os.path.join(prefix, "share", "man", "man1", "pshm.1")
        comp = os.path.join(prefix, "share", "bash-completion", "completions", "pshm")
        assert open(man).read() == open(os.path.join(ROOT, "doc", "pshm.1")).read()
        assert open(comp).read() == open(COMPLETION).read()
        r = subprocess.run(["man", "-M", os.path.join(prefix, "share", "man"), "-w", "pshm"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == man, r
