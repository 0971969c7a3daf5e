// The command line (SPEC §2), parsed with node:util parseArgs: options, their values, `--`,
// and server words in the order typed. Only a word that begins with `-` (and is not `-`
// alone) can be an option, and then only a known one; every other word is a server word.
import {parseArgs} from 'node:util'

import {quote, UsageError} from '../core/errors.js'
import {FLAGS, OCLIF_FLAGS, type FlagSpec, type ParsedFlags} from './flags.js'

export type CommandLine =
  | {kind: 'check'; flags: ParsedFlags; words: string[]}
  /** `--help`, `-h` or `--version` before `--`: oclif answers it. */
  | {kind: 'oclif'}

type ParseOptions = NonNullable<Parameters<typeof parseArgs>[0]>['options']

/** One command's grammar: its flag table and parseArgs' option table made from it. */
interface Grammar {
  readonly specs: Record<string, FlagSpec>
  readonly options: ParseOptions
  /** The command line that shows its help, for the unknown-option message. */
  readonly help: string
}

/** parseArgs' option table: every flag, `--no-` forms, and the two oclif answers. */
function grammarOf(specs: Record<string, FlagSpec>, help: string): Grammar {
  const options: ParseOptions = Object.fromEntries([
    ...Object.entries(specs).flatMap(([name, spec]) => [
      [name, {type: spec.type === 'value' ? 'string' : 'boolean', ...(spec.char ? {short: spec.char} : {})}],
      ...(spec.negatable ? [[`no-${name}`, {type: 'boolean'}]] : []),
    ]),
    ...Object.entries(OCLIF_FLAGS).map(([name, char]) => [name, {type: 'boolean', ...(char ? {short: char} : {})}]),
  ])
  return {specs, options, help}
}

const CHECK = grammarOf(FLAGS, 'smtpdcheck --help')

/** The flag a token names (`no-cache` → cache), or undefined when it is no flag of ours. */
function flagOf(specs: Record<string, FlagSpec>, name: string): string | undefined {
  if (Object.hasOwn(specs, name)) return name
  const positive = name.slice(3)
  return name.startsWith('no-') && Object.hasOwn(specs, positive) && specs[positive].negatable ? positive : undefined
}

/** `-4 (--ipv4)` or `--stop`: a flag as the user may have typed it. */
function spell(specs: Record<string, FlagSpec>, name: string): string {
  const char = specs[name]?.char
  return char ? `"-${char}" (--${name})` : `"--${name}"`
}

function tokensOf(grammar: Grammar, argv: readonly string[]) {
  return parseArgs({args: [...argv], options: grammar.options, strict: false, allowPositionals: true, tokens: true}).tokens
}

/** `--`, or a word that reads as options of ours only (`--json`, `-4v`, `--no-cache`, `-h`). */
function namesOption(grammar: Grammar, word: string): boolean {
  if (word === '--') return true
  if (!word.startsWith('-') || word === '-') return false
  return tokensOf(grammar, [word]).every((token) => token.kind === 'option' && (Object.hasOwn(OCLIF_FLAGS, token.name) || flagOf(grammar.specs, token.name) !== undefined))
}

/** Parse the default command's `argv`; a wrong option, a missing or extra value is a UsageError naming it. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  return parseWith(CHECK, argv) as CommandLine
}

/** Parse `argv` by the flag table `specs` (serve's: src/cli/flags.ts); a `multiple` flag's values are a list. */
export function parseFlags(specs: Record<string, FlagSpec>, argv: readonly string[], help: string) {
  return parseWith(grammarOf(specs, help), argv)
}

function parseWith(grammar: Grammar, argv: readonly string[]): {kind: 'check'; flags: Record<string, string | boolean | string[]>; words: string[]} | {kind: 'oclif'} {
  const {specs} = grammar
  const tokens = tokensOf(grammar, argv)
  const flags: Record<string, string | boolean | string[]> = {}
  const words: string[] = []
  let oclif = false
  for (const token of tokens) {
    if (token.kind === 'positional') words.push(token.value)
    if (token.kind !== 'option') continue
    if (Object.hasOwn(OCLIF_FLAGS, token.name)) {
      oclif = true
      continue
    }
    const name = flagOf(specs, token.name)
    if (name === undefined) throw new UsageError(`unknown option ${quote(argv[token.index])} (see ${grammar.help})`)
    const spec = specs[name]
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option ${spell(specs, name)} takes no value: ${quote(`${token.rawName}=${token.value}`)}`)
      flags[name] = !token.name.startsWith('no-')
      continue
    }
    // `--stop --json`: parseArgs would take `--json` as the value; a forgotten value never
    // swallows the next option (`--timeout -1` is a bad value, `--stop=--json` a value).
    if (token.value === undefined || (!token.inlineValue && namesOption(grammar, token.value))) throw new UsageError(`option ${spell(specs, name)} needs a value`)
    if (spec.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), token.value]
    else if (Object.hasOwn(flags, name)) throw new UsageError(`option ${spell(specs, name)} given more than once`)
    else flags[name] = token.value
  }
  if (oclif) return {kind: 'oclif'}
  for (const name of Object.keys(flags)) {
    const other = specs[name].exclusive?.find((x) => Object.hasOwn(flags, x))
    if (other) throw new UsageError(`options ${spell(specs, name)} and ${spell(specs, other)} cannot be used together`)
  }
  return {kind: 'check', flags, words}
}
