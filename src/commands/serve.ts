// `smtpdcheck serve`: the oclif command (help, completion) over src/cli/serve.ts, which
// parses and runs it with the same flag rules as the command (src/cli/flags.ts SERVE_FLAGS).
import {Command, Errors, loadHelpClass} from '@oclif/core'

import {parseFlags} from '../cli/argv.js'
import {SERVE_FLAGS, type ServeFlags} from '../cli/flags.js'
import {fail, failure} from '../cli/run.js'
import {prepareServe, runServe} from '../cli/serve.js'
import {oclifFlags} from './oclif-flags.js'

export default class Serve extends Command {
  static override id = 'serve'
  static override summary = 'A Postfix policy server (and Exim ${readsocket} target): defer a recipient while a more preferred MX is up.'
  static override description = `Answers Postfix's policy delegation protocol: for each RCPT request, looks the recipient domain's MX records up, probes the ones more preferred than the local host (known by the request's server_address and every --stop: behind NAT, give the public names) and replies "action=DEFER_IF_PERMIT 4.7.1 Please use server NAME" when one greets with 220, else "action=DUNNO" (also when the MX list does not contain this host, on any failure, and past --timeout).
Probes in flight are shared; outcomes are cached in memory (--positive-ttl 30 s, --negative-ttl 60 s here), MX and address answers for their TTL, at most 30 s. One log line per decision on stderr. SIGTERM, SIGINT or SIGHUP: stop accepting, answer what is in flight, exit 0. A start-up error (bad flag, address in use, a live unix socket): one line, exit 2.`
  static override usage = ['serve --listen inet:HOST:PORT|unix:PATH [--listen …] [--stop {ip-addr|name} …] [--timeout s] [--port N] [-4|-6] [--dns-server A] [cache options]']
  static override examples = [
    {description: 'Start it (systemd: contrib/smtpdcheck.service):', command: 'smtpdcheck serve --listen inet:127.0.0.1:10040 --cache-file /var/cache/smtpdcheck/cache.json'},
    {description: 'Postfix main.cf, in smtpd_recipient_restrictions after reject_unauth_destination:', command: 'check_policy_service { inet:127.0.0.1:10040, timeout=15s, default_action=DUNNO }'},
    {description: 'Exim, in the RCPT ACL (see the README for the whole recipe):', command: 'defer condition = ${if match{${readsocket{inet:127.0.0.1:10040}{request=smtpd_access_policy\\nprotocol_state=RCPT\\nrecipient=$local_part@$domain\\nserver_address=$received_ip_address\\n\\n}{10s}{}{action=DUNNO}}}{^action=DEFER_IF_PERMIT}}'},
  ]
  static override strict = false
  static override flags = oclifFlags(SERVE_FLAGS)

  override async run(): Promise<void> {
    const line = parseFlags(SERVE_FLAGS, this.argv, 'smtpdcheck serve --help')
    this.parsed = true // by src/cli/argv.ts, the rules of the command (no oclif "did not parse" warning)
    if (line.kind === 'oclif') return this.answerOclif()
    await runServe(prepareServe(line.flags as ServeFlags, line.words))
  }

  /** --help shows this command's help (not the default command's); --version the version. */
  async answerOclif(): Promise<void> {
    const end = this.argv.includes('--') ? this.argv.indexOf('--') : this.argv.length
    if (this.argv.slice(0, end).some((word) => word !== '--version' && /^(--help|-[^-]*h)/.test(word))) {
      const Help = await loadHelpClass(this.config)
      return new Help(this.config).showCommandHelp({...Serve, id: 'serve', flags: Serve.flags, args: {}} as never, [])
    }
    this.log(this.config.userAgent)
  }

  override async catch(error: Error): Promise<never> {
    if (error instanceof Errors.ExitError) throw error
    fail(failure(error))
  }
}
