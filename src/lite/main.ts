// Entry of the fast bundle dist/smtpdcheck.js (scripts/build.js): the ordinary command with
// '@oclif/core' replaced by ./oclif.ts. Resolves false when the command line needs the real
// oclif (see ./oclif.ts); bin/run.js then hands it over.
import Check from '../commands/check.js'
import {NeedOclif} from './oclif.js'

export async function main(argv: string[]): Promise<boolean> {
  try {
    await Check.run(argv)
    return true
  } catch (error) {
    if (error instanceof NeedOclif) return false
    throw error
  }
}
