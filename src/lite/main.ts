// Entry of the fast bundle dist/smtpdcheck.cjs (scripts/build.js): the ordinary command with
// '@oclif/core' replaced by ./oclif.ts. main() resolves false when the command line needs the
// real oclif (see ./oclif.ts); bin/run.js then hands it over.
import Check from '../commands/check.js'
import {NeedOclif, parseArgv, type FlagDef} from './oclif.js'

export async function main(argv: string[]): Promise<boolean> {
  try {
    await Check.run(argv)
    return true
  } catch (error) {
    if (error instanceof NeedOclif) return false
    throw error
  }
}

/** What the fast path parses `argv` to, or undefined when it leaves it to oclif (for tests). */
export function parse(argv: readonly string[]) {
  try {
    return parseArgv(Check.flags as unknown as Record<string, FlagDef>, argv)
  } catch (error) {
    if (error instanceof NeedOclif) return undefined
    throw error
  }
}
