// oclif's flag definitions made from a flag table of src/cli/flags.ts (--help, completion):
// one table per command, the same entries for the command and `serve`.
import {Flags} from '@oclif/core'

import type {FlagSpec} from '../cli/flags.js'

/** The table's flags as oclif sees them, plus --help and --version. */
export function oclifFlags(table: Record<string, FlagSpec>) {
  const flags = Object.entries(table).map(([name, spec]) => {
    const common = {summary: spec.summary, ...(spec.char ? {char: spec.char as 'a'} : {}), ...(spec.exclusive ? {exclusive: [...spec.exclusive]} : {})}
    if (spec.type === 'boolean') return [name, Flags.boolean({...common, ...(spec.negatable ? {allowNo: true} : {})})]
    return [name, spec.multiple ? Flags.string({...common, helpValue: spec.helpValue, multiple: true, multipleNonGreedy: true}) : Flags.string({...common, helpValue: spec.helpValue})]
  })
  return {...Object.fromEntries(flags), help: Flags.help({char: 'h'}), version: Flags.version()}
}
