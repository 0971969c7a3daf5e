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

/** `"-4" (--ipv4)` or `"--stop"`: a flag as the user typed it (`typed`: `-4`, `--ipv4`, `--no-cache`). */
function spell(name: string, typed = `--${name}`): string {
  return typed.startsWith('--') ? `"${typed}"` : `"${typed}" (--${name})`
}

/** Edit distance with adjacent swaps (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({length: a.length + 1}, (_, i) => Array.from({length: b.length + 1}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/**
 * The option an unknown `--name` was likely meant to be, among the long names of `grammar`
 * (the table's, `--no-` forms and oclif's): a unique prefix (`--verb`, `--time`), else the
 * nearest long name within a third of its length (`--stpo`, `--mx-`), else none.
 */
export function nearestOption(name: string, grammar: Grammar = CHECK): string | undefined {
  const bare = name.replace(/^-+/, '').replace(/=.*$/s, '').toLowerCase()
  if (bare === '') return undefined
  const longNames = Object.keys(grammar.options as object)
  const prefixed = longNames.filter((long) => long.startsWith(bare))
  if (prefixed.length === 1) return `--${prefixed[0]}`
  const scored = longNames.map((long) => ({long, d: distance(bare, long)})).sort((x, y) => x.d - y.d)
  const [best, second] = scored
  const near = best.d <= Math.max(1, Math.floor(best.long.length / 3)) && (second === undefined || second.d > best.d)
  return near ? `--${best.long}` : undefined
}

/** The line for an unknown option: its word, a suggestion when one is near, where to look. */
function unknownOption(grammar: Grammar, word: string): UsageError {
  const guess = word.startsWith('--') ? nearestOption(word, grammar) : undefined
  return new UsageError(`unknown option ${quote(word)}${guess ? `; did you mean ${guess}?` : ''} (see ${grammar.help})`)
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
  const typed: Record<string, string> = {}
  const words: string[] = []
  let oclif = false
  for (const token of tokens) {
    if (token.kind === 'positional') words.push(token.value)
    // Node's parseArgs reads a `-` inside a group of short options (`-4-`, `-h-`) as `--`:
    // only the word `--` itself ends the options; in a group it is an unknown option.
    if (token.kind === 'option-terminator' && argv[token.index] !== '--') throw unknownOption(grammar, argv[token.index])
    if (token.kind !== 'option') continue
    if (Object.hasOwn(OCLIF_FLAGS, token.name)) {
      oclif = true
      continue
    }
    const name = flagOf(specs, token.name)
    if (name === undefined) throw unknownOption(grammar, argv[token.index])
    const spec = specs[name]
    typed[name] ??= token.rawName
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option ${spell(name, token.rawName)} takes no value: ${quote(`${token.rawName}=${token.value}`)}`)
      flags[name] = !token.name.startsWith('no-')
      continue
    }
    // `--stop --json`: parseArgs would take `--json` as the value; a forgotten value never
    // swallows the next option (`--timeout -1` is a bad value, `--stop=--json` a value).
    if (token.value === undefined || (!token.inlineValue && namesOption(grammar, token.value))) throw new UsageError(`option ${spell(name, token.rawName)} needs a value`)
    if (spec.multiple) flags[name] = [...((flags[name] as string[] | undefined) ?? []), token.value]
    else if (Object.hasOwn(flags, name)) throw new UsageError(`option ${spell(name, token.rawName)} given more than once`)
    else flags[name] = token.value
  }
  if (oclif) return {kind: 'oclif'}
  for (const name of Object.keys(flags)) {
    const other = specs[name].exclusive?.find((x) => Object.hasOwn(flags, x))
    if (other) throw new UsageError(`options ${spell(name, typed[name])} and ${spell(other, typed[other])} cannot be used together`)
  }
  return {kind: 'check', flags, words}
}
