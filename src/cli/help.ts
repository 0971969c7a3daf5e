// oclif's help for a tool of one command (package.json oclif.helpClass): the usage lines
// without the empty command id (`$ smtpdcheck  [--stop`), and the summary said once, above
// the usage, not again at the head of DESCRIPTION.
import {Command, CommandHelp, Help} from '@oclif/core'

/** One command's help, with the two fixes above. */
class OneCommandHelp extends CommandHelp {
  protected override usage(): string {
    // The id is an ejs placeholder here, rendered later: to "" for the default command (two
    // spaces then, so it goes), to `serve` for serve (kept: the usage line is the command).
    return this.command.id ? super.usage() : super.usage().replaceAll(' <%= command.id %>', '')
  }

  protected override description(): string | undefined {
    return this.command.description === undefined ? undefined : this.wrap(this.command.description)
  }
}

export default class SmtpdcheckHelp extends Help {
  protected override getCommandHelpClass(command: Command.Loadable): CommandHelp {
    return new OneCommandHelp(command, this.config, this.opts)
  }
}
