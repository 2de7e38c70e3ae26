"""Shell completion for bash and zsh, generated from the argument parser itself, so a new
command or option completes without anyone keeping a list.

The parser is walked into tables keyed by the command path (`fixgw`, `fixgw order`,
`fixgw order new`): its subcommands (with their help, for zsh), its options, the values an
option takes where it names them (`--side` buy or sell), and the options that take a value
(completed as file names where no values are named). Each script is those tables and one
small function that finds the command path among the words typed so far."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Command:
    path: str
    subcommands: dict[str, str] = field(default_factory=dict)
    """Name -> one line of help."""
    words: list[str] = field(default_factory=list)
    """The values its positional arguments take, where they name them (`completion bash`)."""
    options: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    """Option -> the values it takes."""
    takes_value: list[str] = field(default_factory=list)


def walk(parser: argparse.ArgumentParser, path: str = "fixgw") -> Iterator[Command]:
    """Every command path of the parser, the top first."""
    command = Command(path)
    nested: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, subparser in action.choices.items():
                command.subcommands[name] = helps.get(name) or subparser.description or ""
                nested.append((name, subparser))
            continue
        if not action.option_strings:
            command.words += [str(c) for c in action.choices or ()]
            continue
        command.options += action.option_strings
        if action.nargs != 0:
            command.takes_value += action.option_strings
            for option in action.option_strings:
                if action.choices is not None:
                    command.choices[option] = [str(c) for c in action.choices]
    yield command
    for name, subparser in nested:
        yield from walk(subparser, f"{path} {name}")


def _assoc(name: str, entries: dict[str, str]) -> str:
    """An associative array literal, every key and value quoted for the shell."""
    body = "".join(f"    [{shlex.quote(k)}]={shlex.quote(v)}\n" for k, v in entries.items())
    return f"{name}=(\n{body})\n"


def _zsh_assoc(name: str, entries: dict[str, str]) -> str:
    body = "".join(f"    {shlex.quote(k)} {shlex.quote(v)}\n" for k, v in entries.items())
    return f"{name}=(\n{body})\n"


def _escape_colons(text: str) -> str:
    return text.replace(":", r"\:")


def _tables(parser: argparse.ArgumentParser, described: bool) -> dict[str, dict[str, str]]:
    """Each table keyed by command path (by `path option` for the values an option takes);
    `described`: also every subcommand's `name:help` lines, as zsh's `_describe` reads them."""
    commands = list(walk(parser))
    tables = {
        "_fixgw_subcommands": {c.path: " ".join(c.subcommands) for c in commands if c.subcommands},
        "_fixgw_words": {c.path: " ".join(c.words) for c in commands if c.words},
        "_fixgw_options": {c.path: " ".join(c.options) for c in commands},
        "_fixgw_takes_value": {c.path: " ".join(c.takes_value) for c in commands},
        "_fixgw_choices": {
            f"{c.path} {option}": " ".join(values)
            for c in commands
            for option, values in c.choices.items()
        },
    }
    if described:
        tables["_fixgw_described"] = {
            c.path: "\n".join(
                f"{_escape_colons(name)}:{_escape_colons(help_)}"
                for name, help_ in c.subcommands.items()
            )
            for c in commands
            if c.subcommands
        }
    return tables


BASH_FUNCTION = r"""
_fixgw() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local path=fixgw word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ " ${_fixgw_subcommands[$path]-} " == *" $word "* ]]; then
            path="$path $word"
        fi
    done
    if [[ -n ${_fixgw_choices["$path $prev"]+set} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_fixgw_choices["$path $prev"]}" -- "$cur")
    elif [[ " ${_fixgw_takes_value[$path]-} " == *" $prev "* ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    elif [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_fixgw_options[$path]-}" -- "$cur")
    else
        mapfile -t COMPREPLY < <(
            compgen -W "${_fixgw_subcommands[$path]-} ${_fixgw_words[$path]-}" -- "$cur"
        )
    fi
}
complete -o default -F _fixgw fixgw
"""

ZSH_FUNCTION = r"""
_fixgw() {
    local cmdpath=fixgw word i prev=${words[CURRENT-1]}
    for (( i = 2; i < CURRENT; i++ )); do
        word=${words[i]}
        if [[ " ${_fixgw_subcommands[$cmdpath]-} " == *" $word "* ]]; then
            cmdpath="$cmdpath $word"
        fi
    done
    if (( ${+_fixgw_choices[$cmdpath $prev]} )); then
        compadd -- ${=_fixgw_choices[$cmdpath $prev]}
    elif [[ " ${_fixgw_takes_value[$cmdpath]-} " == *" $prev "* ]]; then
        _files
    elif [[ ${words[CURRENT]} == -* ]]; then
        compadd -- ${=_fixgw_options[$cmdpath]}
    elif (( ${+_fixgw_described[$cmdpath]} )); then
        local -a described
        described=("${(@f)_fixgw_described[$cmdpath]}")
        _describe -t commands 'fixgw command' described
    elif (( ${+_fixgw_words[$cmdpath]} )); then
        compadd -- ${=_fixgw_words[$cmdpath]}
    else
        _files
    fi
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _fixgw "$@"  # autoloaded from a directory in $fpath
else
    compdef _fixgw fixgw  # sourced
fi
"""


def bash_script(parser: argparse.ArgumentParser) -> str:
    tables = _tables(parser, described=False)
    arrays = "".join(_assoc(name, entries) for name, entries in tables.items())
    return (
        "# bash completion for fixgw, made by `fixgw completion bash` from its parser\n"
        f"declare -gA {' '.join(tables)}\n{arrays}{BASH_FUNCTION}"
    )


def zsh_script(parser: argparse.ArgumentParser) -> str:
    tables = _tables(parser, described=True)
    arrays = "".join(_zsh_assoc(name, entries) for name, entries in tables.items())
    return (
        "#compdef fixgw\n"
        "# zsh completion for fixgw, made by `fixgw completion zsh` from its parser\n"
        f"typeset -gA {' '.join(tables)}\n{arrays}{ZSH_FUNCTION}"
    )


SCRIPTS = {"bash": bash_script, "zsh": zsh_script}
