// The oclif command: help, version and completion from the flag table of src/cli/flags.ts;
// the command line itself is parsed and run by src/cli, as in the fast entry (one set of rules).
import {Command, Errors} from '@oclif/core'

import {parseCommandLine} from '../cli/argv.js'
import {FLAGS} from '../cli/flags.js'
import {failRun, prepare, runCheck, usage} from '../cli/run.js'
import {oclifFlags} from './oclif-flags.js'

export default class Check extends Command {
  static override summary = 'Is a more preferred MX of this domain up right now?'
  static override description = `Probes the SMTP servers that are more preferred than the local host (--stop, repeatable: each address or name it is known by) and prints the first one that greets with 220. With --mx, a local host that is not among the MX records means exit 0.

Server words: a host name, an IPv4 address or an IPv6 address, each optionally after a priority (0-65535) and a colon: mx1.example.org 10:mx1.example.org 192.0.2.1 2001:db8::1 10:[2001:db8::1]. A word without a priority counts by its place: the words before the local host are more preferred. The port goes in --port, never in a word.

Options may come anywhere; only a word that begins with "-" can be one. Everything after "--" is a server word (a host named like an option, or "autocomplete", which as the first word is the shell-completion subcommand).

Exit status: 1 and the server's name on stdout when one is available; 0 when none is; 2 on a usage error, a --stop or --mx lookup failure, a system error or a signal.`
  static override usage = ['[--stop {ip-addr|name}] [--timeout seconds] [options] [prio:]server ...', '[--stop {ip-addr|name}] [--timeout seconds] [options] --mx DOMAIN']
  static override examples = [
    {description: 'Always exits 0: the local host s2 has the same priority as s1.', command: 'smtpdcheck --stop s2.domain.com 10:s1.domain.com 10:s2.domain.com 20:s3.domain.com'},
    {description: 'Prints s1.domain.com and exits 1 if s1.domain.com is up.', command: 'smtpdcheck --stop s2.domain.com 10:s1.domain.com 20:s2.domain.com 30:s3.domain.com'},
    {description: 'Mail Avenger, /etc/avenger/secondary:', command: 'server=`smtpdcheck --stop $MYIP $RECIP_MXES`; test -n "$server" && defer "Please use server $server"'},
    {description: 'Shell completion (only a first word exactly "autocomplete" is this subcommand):', command: 'smtpdcheck autocomplete bash'},
    {description: 'Policy server for Postfix and Exim (only a first word exactly "serve" is this subcommand; see smtpdcheck serve --help):', command: 'smtpdcheck serve --listen inet:127.0.0.1:10040'},
  ]
  static override strict = false
  static override flags = oclifFlags(FLAGS)

  override async run(): Promise<void> {
    if (this.argv.length === 0) usage()
    const line = parseCommandLine(this.argv)
    // --help / --version: oclif's parse prints them and exits 0.
    if (line.kind === 'oclif') await this.parse(Check)
    else await runCheck(prepare(line.flags, line.words))
  }

  override async catch(error: Error): Promise<never> {
    // oclif's own exit (after help or version) passes through.
    if (error instanceof Errors.ExitError) throw error
    failRun(error, this.argv)
  }
}
