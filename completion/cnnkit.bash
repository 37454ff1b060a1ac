# bash completion for cnnkit (installed as share/bash-completion/completions/cnnkit).
# Subcommands and options are read from the installed binary's own --help texts (so they never go stale);
# values with a fixed set of choices are completed from the lists below (the built-in networks from `cnnkit
# summary --help`), everything else as file names.

_cnnkit_subcommands()
{
    "$1" --help 2>/dev/null | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'
}

_cnnkit_options()
{
    "$1" "$2" --help 2>/dev/null | grep -oE -- '(^|[ ,[(|])--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

_cnnkit_builtins()
{
    "$1" summary --help 2>/dev/null | sed -n 's/^ARCH is a built-in: \(.*\)\.$/\1/p' | tr -d ','
}

# Choices for an option's value in a subcommand; empty when the value is a path or a number.
_cnnkit_choices()
{
    case "$2:$3" in
    features:--kind) echo "mel stft wavelet" ;;
    features:--format) echo "npy png" ;;
    features:--colormap) echo "grey viridis magma" ;;
    predict:--format) echo "text csv json" ;;
    train:--input) echo "auto mel wavelet mel+wavelet image csv npy idx" ;;
    train:--optimizer) echo "adam adamw sgd" ;;
    train:--freeze) echo "backbone none" ;;
    train:--tta) echo "flip none" ;;
    train:--arch) _cnnkit_builtins "$1" ;;
    train:--center) echo "on off" ;;
    train:--clip-norm) echo "none cmn cmvn" ;;
    esac
}

_cnnkit()
{
    local cur prev words cword
    if declare -F _init_completion > /dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi
    local cnnkit=${words[0]}
    if [ "$cword" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(_cnnkit_subcommands "$cnnkit") help --help --version" -- "$cur"))
        return
    fi
    local sub=${words[1]}
    if [ "$sub" = help ]; then
        [ "$cword" -eq 2 ] && COMPREPLY=($(compgen -W "$(_cnnkit_subcommands "$cnnkit")" -- "$cur"))
        return
    fi
    local choices
    choices=$(_cnnkit_choices "$cnnkit" "$sub" "$prev")
    if [ -n "$choices" ]; then
        COMPREPLY=($(compgen -W "$choices" -- "$cur"))
        [ "$prev" = --arch ] && COMPREPLY+=($(compgen -f -X '!*.cfg' -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_cnnkit_options "$cnnkit" "$sub")" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
    compopt -o filenames 2> /dev/null
}

complete -F _cnnkit cnnkit
