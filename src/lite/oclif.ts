// A stand-in for @oclif/core inside the fast bundle (scripts/build.js aliases '@oclif/core'
// to this file for dist/smtpdcheck.cjs only): just enough Command, Flags and Errors to run the
// ordinary command without loading oclif (its Config.load and parser cost ~3× a bare node
// start). The flag definitions are the command's own `static flags`, built by the Flags below.
// parse() takes only plain words and exact, single, known flags; everything else (--help,
// --version, unknown, repeated or bundled flags, a value that looks like a flag, exclusive
// flags together) throws NeedOclif, and bin/run.js then runs the real oclif on the same argv —
// so every oclif message stays oclif's. test/cli-routing.test.ts checks that what this parser
// accepts, oclif parses to the same result.

export interface FlagDef {
  type: 'boolean' | 'option'
  char?: string
  allowNo?: boolean
  default?: unknown
  exclusive?: string[]
  /** --help and --version: always left to oclif. */
  oclifOnly?: boolean
  [key: string]: unknown
}

/** Thrown when a command line needs the real oclif. */
export class NeedOclif extends Error {}

export const Flags = {
  string: (options: Record<string, unknown> = {}): FlagDef => ({...options, type: 'option'}),
  boolean: (options: Record<string, unknown> = {}): FlagDef => ({...options, type: 'boolean'}),
  help: (options: Record<string, unknown> = {}): FlagDef => ({...options, type: 'boolean', oclifOnly: true}),
  version: (options: Record<string, unknown> = {}): FlagDef => ({...options, type: 'boolean', oclifOnly: true}),
}

export const Errors = {
  CLIError: class CLIError extends Error {},
  ExitError: class ExitError extends Error {},
}

/** oclif's parse for the subset above: {flags, argv, nonExistentFlags}. */
export function parseArgv(definitions: Record<string, FlagDef>, argv: readonly string[]) {
  const named = (word: string): [string, FlagDef] | undefined => {
    if (word.startsWith('--')) {
      const name = word.slice(2)
      if (definitions[name]) return [name, definitions[name]]
      const negated = name.slice(3)
      if (name.startsWith('no-') && definitions[negated]?.allowNo) return [negated, definitions[negated]]
      return undefined
    }
    return word.length === 2 ? Object.entries(definitions).find(([, def]) => def.char === word[1]) : undefined
  }
  const flags: Record<string, unknown> = {}
  const words: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    if (word === '--') {
      words.push(...argv.slice(i + 1))
      break
    }
    if (!word.startsWith('-') || word === '-') {
      words.push(word)
      continue
    }
    const equals = word.startsWith('--') ? word.indexOf('=') : -1
    const found = named(equals === -1 ? word : word.slice(0, equals))
    if (!found || found[1].oclifOnly || found[0] in flags) throw new NeedOclif(word)
    const [name, def] = found
    if (def.type === 'boolean') {
      if (equals !== -1) throw new NeedOclif(word)
      flags[name] = word !== `--no-${name}`
      continue
    }
    const value = equals === -1 ? argv[++i] : word.slice(equals + 1)
    if (value === undefined || value.startsWith('-')) throw new NeedOclif(word)
    flags[name] = value
  }
  for (const name of Object.keys(flags)) {
    if (definitions[name].exclusive?.some((other) => other in flags)) throw new NeedOclif(name)
  }
  for (const [name, def] of Object.entries(definitions)) {
    if (!(name in flags) && def.default !== undefined) flags[name] = def.default
  }
  // oclif orders the words by their first position in the command line.
  words.sort((a, b) => argv.indexOf(a) - argv.indexOf(b))
  return {flags, argv: words, nonExistentFlags: [] as string[]}
}

export abstract class Command {
  static summary?: string
  static description?: string
  static usage?: string[]
  static examples?: unknown[]
  static strict?: boolean
  static flags: Record<string, FlagDef> = {}

  constructor(readonly argv: string[]) {}

  /** Run the command; a NeedOclif goes up to bin/run.js, any other error to catch(). */
  static async run(this: new (argv: string[]) => Command, argv: string[]): Promise<void> {
    const command = new this(argv)
    try {
      await command.run()
    } catch (error) {
      if (error instanceof NeedOclif) throw error
      await command.catch(error as Error)
    }
  }

  abstract run(): Promise<void>

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async parse(command: {flags: Record<string, FlagDef>}): Promise<any> {
    return parseArgv(command.flags, this.argv)
  }

  async catch(error: Error): Promise<unknown> {
    throw error
  }
}
