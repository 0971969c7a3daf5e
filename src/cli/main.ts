// Entry of the fast bundle dist/smtpdcheck.cjs (scripts/build.js), which does not load oclif:
// main() runs the command and resolves false only for a line oclif answers (--help,
// --version); bin/run.js then hands that line to oclif unchanged.
import {parseCommandLine} from './argv.js'
import {failRun, runCommand, usage} from './run.js'

export {parseCommandLine} from './argv.js'

export async function main(argv: readonly string[]): Promise<boolean> {
  if (argv.length === 0) usage()
  try {
    const line = parseCommandLine(argv)
    if (line.kind === 'oclif') return false
    return await runCommand(line.flags, line.words)
  } catch (error) {
    failRun(error, argv)
  }
}
