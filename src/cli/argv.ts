// The command line (SPEC §2), parsed with node:util parseArgs: options, their values, `--`,
// and server words in the order typed. Only a word that begins with `-` (and is not `-`
// alone) can be an option, and then only a known one; every other word is a server word.
import {parseArgs} from 'node:util'

import {quote, UsageError} from '../core/errors.js'
import {FLAGS, OCLIF_FLAGS, type FlagName, type FlagSpec, type ParsedFlags} from './flags.js'

export type CommandLine =
  | {kind: 'check'; flags: ParsedFlags; words: string[]}
  /** `--help`, `-h` or `--version` before `--`: oclif answers it. */
  | {kind: 'oclif'}

const SPECS: Record<string, FlagSpec> = FLAGS

/** parseArgs' option table: every flag, `--no-` forms, and the two oclif answers. */
const OPTIONS: NonNullable<Parameters<typeof parseArgs>[0]>['options'] = Object.fromEntries([
  ...Object.entries(SPECS).flatMap(([name, spec]) => [
    [name, {type: spec.type === 'value' ? 'string' : 'boolean', ...(spec.char ? {short: spec.char} : {})}],
    ...(spec.negatable ? [[`no-${name}`, {type: 'boolean'}]] : []),
  ]),
  ...Object.entries(OCLIF_FLAGS).map(([name, char]) => [name, {type: 'boolean', ...(char ? {short: char} : {})}]),
])

/** The flag a token names (`no-cache` → cache), or undefined when it is no flag of ours. */
function flagOf(name: string): FlagName | undefined {
  if (Object.hasOwn(SPECS, name)) return name as FlagName
  const positive = name.slice(3)
  return name.startsWith('no-') && Object.hasOwn(SPECS, positive) && SPECS[positive].negatable ? (positive as FlagName) : undefined
}

/** `-4 (--ipv4)` or `--stop`: a flag as the user may have typed it. */
function spell(name: string): string {
  const char = SPECS[name]?.char
  return char ? `"-${char}" (--${name})` : `"--${name}"`
}

function tokensOf(argv: readonly string[]) {
  return parseArgs({args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true}).tokens
}

/** `--`, or a word that reads as options of ours only (`--json`, `-4v`, `--no-cache`, `-h`). */
function namesOption(word: string): boolean {
  if (word === '--') return true
  if (!word.startsWith('-') || word === '-') return false
  return tokensOf([word]).every((token) => token.kind === 'option' && (Object.hasOwn(OCLIF_FLAGS, token.name) || flagOf(token.name) !== undefined))
}

/** Parse `argv`; a wrong option, a missing or extra value is a UsageError naming it. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const tokens = tokensOf(argv)
  const flags: Record<string, string | boolean> = {}
  const words: string[] = []
  let oclif = false
  for (const token of tokens) {
    if (token.kind === 'positional') words.push(token.value)
    if (token.kind !== 'option') continue
    if (Object.hasOwn(OCLIF_FLAGS, token.name)) {
      oclif = true
      continue
    }
    const name = flagOf(token.name)
    if (name === undefined) throw new UsageError(`unknown option ${quote(argv[token.index])} (see smtpdcheck --help)`)
    const spec = SPECS[name]
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`option ${spell(name)} takes no value: ${quote(`${token.rawName}=${token.value}`)}`)
      flags[name] = !token.name.startsWith('no-')
      continue
    }
    // `--stop --json`: parseArgs would take `--json` as the value; a forgotten value never
    // swallows the next option (`--timeout -1` is a bad value, `--stop=--json` a value).
    if (token.value === undefined || (!token.inlineValue && namesOption(token.value))) throw new UsageError(`option ${spell(name)} needs a value`)
    if (Object.hasOwn(flags, name)) throw new UsageError(`option ${spell(name)} given more than once`)
    flags[name] = token.value
  }
  if (oclif) return {kind: 'oclif'}
  for (const name of Object.keys(flags)) {
    const other = SPECS[name].exclusive?.find((x) => Object.hasOwn(flags, x))
    if (other) throw new UsageError(`options ${spell(name)} and ${spell(other)} cannot be used together`)
  }
  return {kind: 'check', flags: flags as ParsedFlags, words}
}
