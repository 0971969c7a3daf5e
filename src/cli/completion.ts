// `smtpdcheck autocomplete`: shell completion made from the one flag table (./flags.ts), for a
// tool of one command: options complete anywhere before `--`, `--cache-file` takes file
// names, the first word may be a subcommand (bin/run.js's SUBCOMMANDS), nothing else is
// offered (a server word is a host: bash must not offer file names for it). No oclif here.
import {quote, UsageError} from '../core/errors.js'
import {FLAGS, SERVE_FLAGS, type FlagSpec} from './flags.js'

export const SHELLS = ['bash', 'zsh'] as const
export type Shell = (typeof SHELLS)[number]

type Table = Record<string, FlagSpec>

/** The commands that take options: the default one, and `serve` (its own table). */
const TABLES: ReadonlyArray<readonly [string, Table]> = [['', FLAGS], ['serve', SERVE_FLAGS]]

/** Every long option of `table` as typed (`--no-cache` too), and `--help`, `--version`. */
export function longOptions(table: Table = FLAGS): string[] {
  const names = Object.entries(table).flatMap(([name, spec]) => [`--${name}`, ...(spec.negatable ? [`--no-${name}`] : [])])
  return [...names, '--help', '--version']
}

/** Options whose value is a file name (completed as files); other values get nothing. */
const FILE_VALUED = new Set(['cache-file'])

/** `--name …` of the options of `table` that take a value: file names, or anything else. */
function valued(table: Table, files: boolean): string {
  return Object.keys(table).filter((name) => table[name].type === 'value' && FILE_VALUED.has(name) === files).map((name) => `--${name}`).join(' ')
}

/** A bash `case` offering the values of the options of `table` that have `choices` ('' when none has). */
function choiceCase(table: Table): string {
  const arms = Object.entries(table).flatMap(([name, spec]) => (spec.choices ? [`--${name}) COMPREPLY=($(compgen -W "${spec.choices.join(' ')}" -- "$cur")); return 0;;`] : []))
  return arms.length === 0 ? ':' : `case $prev in ${arms.join(' ')} esac`
}

/** The bash completion script: one function, bound with `complete -F`; bash 4 or later. */
export function bashScript(subcommands: readonly string[]): string {
  const [[, check], [, serve]] = TABLES
  return `# bash completion for smtpdcheck (made by \`smtpdcheck autocomplete script bash\`)
_smtpdcheck_autocomplete() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev= i first=1
  local long="${longOptions(check).join(' ')}" files="${valued(check, true)}" values="${valued(check, false)}"
  (( COMP_CWORD > 1 )) && prev=\${COMP_WORDS[COMP_CWORD-1]}
  # \`--cache-file=PA<TAB>\`: bash splits the word at "=".
  if [[ $cur == = ]]; then prev=\${COMP_WORDS[COMP_CWORD-1]}; cur=
  elif [[ $prev == = ]] && (( COMP_CWORD > 2 )); then prev=\${COMP_WORDS[COMP_CWORD-2]}; fi
  COMPREPLY=()
  if (( COMP_CWORD > 1 )) && [[ \${COMP_WORDS[1]} == autocomplete ]]; then
    if (( COMP_CWORD == 2 )); then COMPREPLY=($(compgen -W "${SHELLS.join(' ')} script --help" -- "$cur"))
    elif (( COMP_CWORD == 3 )) && [[ \${COMP_WORDS[2]} == script ]]; then COMPREPLY=($(compgen -W "${SHELLS.join(' ')}" -- "$cur")); fi
    return 0
  fi
  if (( COMP_CWORD > 1 )) && [[ \${COMP_WORDS[1]} == serve ]]; then
    first=2 long="${longOptions(serve).join(' ')}" files="${valued(serve, true)}" values="${valued(serve, false)}"
  elif (( COMP_CWORD > 1 )) && [[ " ${subcommands.join(' ')} " == *" \${COMP_WORDS[1]} "* ]]; then
    return 0
  fi
  for (( i = first; i < COMP_CWORD; i++ )); do [[ \${COMP_WORDS[i]} == -- ]] && return 0; done
  if [[ -n $prev && " $files " == *" $prev "* ]]; then compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0; fi
  if (( first == 1 )); then ${choiceCase(check)}; else ${choiceCase(serve)}; fi
  [[ -n $prev && " $values " == *" $prev "* ]] && return 0
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$long" -- "$cur"))
  elif (( COMP_CWORD == 1 )); then COMPREPLY=($(compgen -W "${subcommands.join(' ')}" -- "$cur")); fi
  return 0
}
complete -F _smtpdcheck_autocomplete smtpdcheck
`
}

/** A description inside zsh's `[…]`, in a single-quoted word. */
const zshText = (text: string) => text.replace(/\\/g, '\\\\').replace(/[[\]]/g, (c) => `\\${c}`).replace(/'/g, `'\\''`).replace(/:/g, '\\:')

/** `_arguments` specs for the options of `table` (with descriptions; files for --cache-file). */
function zshSpecs(table: Table): string[] {
  const specs = Object.entries(table).flatMap(([name, spec]) => {
    const text = `[${zshText(spec.summary)}]`
    const action = FILE_VALUED.has(name) ? '_files' : spec.choices ? `(${spec.choices.join(' ')})` : ' '
    const value = spec.type === 'value' ? `=${text}:${zshText(spec.helpValue ?? 'value')}:${action}` : text
    const exclusive = [name, ...(spec.exclusive ?? [])].flatMap((n) => [`--${n}`, ...(table[n].char ? [`-${table[n].char}`] : []), ...(table[n].negatable ? [`--no-${n}`] : [])]).join(' ')
    const repeat = spec.multiple ? '*' : `(${exclusive})`
    const forms = spec.char ? `'${repeat}'{-${spec.char},--${name}}'${value}'` : `'${repeat}--${name}${value}'`
    return [forms, ...(spec.negatable ? [`'(--${name} --no-${name})--no-${name}[turn --${name} off]'`] : [])]
  })
  return [...specs, `'(- *)'{-h,--help}'[show the help]'`, `'(- *)--version[show the version]'`]
}

/** The zsh completion function (`#compdef`): options with their descriptions, files for --cache-file. */
export function zshScript(subcommands: readonly string[]): string {
  const [[, check], [, serve]] = TABLES
  return `#compdef smtpdcheck
# zsh completion for smtpdcheck (made by \`smtpdcheck autocomplete script zsh\`)
_smtpdcheck() {
  if [[ $words[2] == autocomplete ]]; then
    (( CURRENT == 3 )) && compadd -- ${SHELLS.join(' ')} script
    (( CURRENT == 4 )) && [[ $words[3] == script ]] && compadd -- ${SHELLS.join(' ')}
    return
  fi
  if [[ $words[2] == serve ]] && (( CURRENT > 2 )); then
    shift words; (( CURRENT-- ))
    _arguments -S \\
      ${zshSpecs(serve).join(' \\\n      ')}
    return
  fi
  (( CURRENT > 2 )) && [[ " ${subcommands.join(' ')} " == *" $words[2] "* ]] && return
  (( CURRENT == 2 )) && [[ $PREFIX != -* ]] && { compadd -- ${subcommands.join(' ')}; return }
  _arguments -S \\
    ${[...zshSpecs(check), `'*:server: '`].join(' \\\n    ')}
}
_smtpdcheck "$@"
`
}

/** How to load the completion, for `smtpdcheck autocomplete [SHELL]`. */
export function instructions(shell: Shell): string {
  const load = shell === 'bash'
    ? `Load it in every new bash with a line in ~/.bashrc:

  echo 'eval "$(smtpdcheck autocomplete script bash)"' >> ~/.bashrc

or install it where the bash-completion package finds it (loaded on first use):

  mkdir -p ~/.local/share/bash-completion/completions
  smtpdcheck autocomplete script bash > ~/.local/share/bash-completion/completions/smtpdcheck`
    : `Install it as a completion function in a directory of your $fpath, before compinit runs:

  mkdir -p ~/.zfunc && smtpdcheck autocomplete script zsh > ~/.zfunc/_smtpdcheck
  # in ~/.zshrc, before compinit:  fpath=(~/.zfunc $fpath)`
  return `Shell completion for smtpdcheck (${shell}).

${load}

Then, in a new shell: \`smtpdcheck --ti<TAB>\` completes an option anywhere before "--",
\`smtpdcheck --cache-file <TAB>\` a file name, \`smtpdcheck <TAB>\` a subcommand.
`
}

export const AUTOCOMPLETE_HELP = `Shell completion for smtpdcheck.

USAGE
  $ smtpdcheck autocomplete [SHELL]         how to load the completion (SHELL: ${SHELLS.join(' or ')}; default: $SHELL's, else bash)
  $ smtpdcheck autocomplete script SHELL    the completion script itself, on stdout
`

/** `smtpdcheck autocomplete …` → what to print on stdout; a bad word is a UsageError. */
export function autocomplete(args: readonly string[], subcommands: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  if (args.includes('--help') || args.includes('-h')) return AUTOCOMPLETE_HELP
  const shellOf = (word: string | undefined): Shell => {
    if (SHELLS.includes(word as Shell)) return word as Shell
    throw new UsageError(`autocomplete: unknown shell ${quote(String(word ?? ''))} (${SHELLS.join(' or ')}; see smtpdcheck autocomplete --help)`)
  }
  const [first, second, ...rest] = args
  const extra = first === 'script' ? rest : [second, ...rest].filter((w) => w !== undefined)
  if (extra.length > 0) throw new UsageError(`autocomplete: unexpected ${quote(extra[0])} (see smtpdcheck autocomplete --help)`)
  if (first === 'script') return (shellOf(second) === 'bash' ? bashScript : zshScript)(subcommands)
  const fromEnv = (env.SHELL ?? '').split('/').at(-1)
  return instructions(first === undefined ? (SHELLS.includes(fromEnv as Shell) ? (fromEnv as Shell) : 'bash') : shellOf(first))
}
