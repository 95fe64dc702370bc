# bash completion for vigilctl (installed as
# $PREFIX/share/bash-completion/completions/vigilctl, which bash-completion
# loads the first time vigilctl is completed).
#
# Commands and options are listed here; program names and worker indices
# come from the running vigild, through vigilctl's own `programs` and
# `workers PROGRAM` (not in its usage: they exist for this), on the bus the
# command line names with --bus (or VIGIL_BUS). A vigild that is not running
# or does not answer within 2 s completes nothing, quietly.

_vigilctl_ask() { # vigilctl [--bus X] programs|workers [PROGRAM]: one word a line
  local ctl=$1
  shift
  command -v timeout >/dev/null 2>&1 || { "$ctl" "$@" 2>/dev/null; return; }
  timeout 2 "$ctl" "$@" 2>/dev/null
}

_vigilctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  local ctl=${COMP_WORDS[0]}
  command -v "$ctl" >/dev/null 2>&1 || ctl=vigilctl

  local commands="status restart reload last-shutdown logs help"
  local global="--bus --color --help --version"
  # The command, its positional arguments and --bus, from the words before the cursor.
  local i word cmd="" bus=() args=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --bus)
        bus=(--bus "${COMP_WORDS[i + 1]}")
        ((i++)) ;;
      --color | --colour | -p | --priority | -n | --lines) ((i++)) ;;
      --bus=*) bus=("$word") ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then cmd=$word; else args+=("$word"); fi ;;
    esac
  done

  case $prev in
    --bus) mapfile -t COMPREPLY < <(compgen -W "system session" -- "$cur"); return ;;
    --color | --colour) mapfile -t COMPREPLY < <(compgen -W "auto always never" -- "$cur"); return ;;
    -p | --priority)
      mapfile -t COMPREPLY < <(compgen -W "emerg alert crit err warning notice info debug" -- "$cur")
      return ;;
    -n | --lines) return ;;
  esac

  if [[ $cur == -* ]]; then
    local options=$global
    case $cmd in
      status | last-shutdown) options+=" --json" ;;
      logs) options+=" -f --follow -p --priority -n --lines" ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    return
  fi

  if [[ -z $cmd ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
    return
  fi
  case $cmd in
    restart)
      ((${#args[@]} == 0)) &&
        mapfile -t COMPREPLY < <(compgen -W "$(_vigilctl_ask "$ctl" "${bus[@]}" programs)" -- "$cur") ;;
    logs)
      if ((${#args[@]} == 0)); then
        mapfile -t COMPREPLY < <(compgen -W "$(_vigilctl_ask "$ctl" "${bus[@]}" programs)" -- "$cur")
      elif ((${#args[@]} == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "$(_vigilctl_ask "$ctl" "${bus[@]}" workers -- "${args[0]}")" -- "$cur")
      fi ;;
    help)
      ((${#args[@]} == 0)) && mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur") ;;
  esac
  return 0
}

complete -F _vigilctl vigilctl
