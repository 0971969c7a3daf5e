// `smtpdcheck serve`: the oclif command (help, completion) over src/cli/serve.ts, which
// parses and runs it with the same flag rules as the command (src/cli/flags.ts SERVE_FLAGS).
import {Command, Errors, loadHelpClass} from '@oclif/core'

import {parseFlags} from '../cli/argv.js'
import {SERVE_FLAGS, type ServeFlags} from '../cli/flags.js'
import {fail, failure, flushStdout} from '../cli/run.js'
import {prepareQuery, runQuery} from '../cli/query.js'
import {prepareServe, runServe} from '../cli/serve.js'
import {oclifFlags} from './oclif-flags.js'

export default class Serve extends Command {
  static override id = 'serve'
  static override summary = 'A Postfix policy server (and Exim ${readsocket} target): defer a recipient while a more preferred MX is up.'
  static override description = `Answers Postfix's policy delegation protocol: for each RCPT request, looks the recipient domain's MX records up, probes the ones more preferred than the local host (known by the request's server_address and every --stop: behind NAT, give the public names) and replies "action=DEFER_IF_PERMIT 4.7.1 Please use server NAME" when one greets with 220, else "action=DUNNO" (also when the MX list does not contain this host, on any failure, and past --timeout).
Probes in flight are shared; outcomes are cached in memory (--positive-ttl 30 s, --negative-ttl 60 s here), MX and address answers for their TTL, at most 30 s. A remembered available server older than 2 s is re-probed in the background. One key=value log line per decision on stderr. SIGTERM or SIGINT: stop accepting, answer what is in flight, exit 0; SIGHUP: forget what is remembered, read the cache file again, log the counters; SIGUSR1: log the counters. A start-up error (bad flag, address in use, a live unix socket): one line, exit 2.`
  static override usage = [
    'serve --listen inet:HOST:PORT|unix:PATH [--listen …] [--stop {ip-addr|name} …] [--timeout s] [--port N] [-4|-6] [--dns-server A] [cache options] [--metrics inet:HOST:PORT]',
    'serve --stdio [options]',
    'serve --query inet:HOST:PORT|unix:PATH --recipient ADDRESS [--server-address IP] [--timeout s]',
  ]
  static override examples = [
    {description: 'Start it (systemd: contrib/smtpdcheck.service):', command: 'smtpdcheck serve --listen inet:127.0.0.1:10040 --cache-file /var/cache/smtpdcheck/cache.json'},
    {description: 'Ask it what Postfix would ask (prints the action; exit 1: defer, 0: DUNNO):', command: 'smtpdcheck serve --query inet:127.0.0.1:10040 --recipient user@example.org --server-address 192.0.2.25'},
    {description: 'Postfix main.cf, in smtpd_recipient_restrictions after reject_unauth_destination (smtpdcheck --print-recipe postfix):', command: 'check_policy_service { inet:127.0.0.1:10040, timeout=15s, default_action=DUNNO }'},
    {description: "Exim: the RCPT ACL statement that asks it with ${readsocket} (defer with the server's message, else accept):", command: 'smtpdcheck --print-recipe exim-serve'},
  ]
  static override strict = false
  static override flags = oclifFlags(SERVE_FLAGS)

  override async run(): Promise<void> {
    const line = parseFlags(SERVE_FLAGS, this.argv, 'smtpdcheck serve --help')
    this.parsed = true // by src/cli/argv.ts, the rules of the command (no oclif "did not parse" warning)
    if (line.kind === 'oclif') return this.answerOclif()
    const flags = line.flags as ServeFlags
    if (flags.query !== undefined) return runQuery(prepareQuery(flags, line.words))
    await runServe(prepareServe(flags, line.words))
  }

  /** --help shows this command's help (not the default command's); --version the version. */
  async answerOclif(): Promise<void> {
    const end = this.argv.includes('--') ? this.argv.indexOf('--') : this.argv.length
    if (this.argv.slice(0, end).some((word) => word !== '--version' && /^(--help|-[^-]*h)/.test(word))) {
      const Help = await loadHelpClass(this.config)
      await new Help(this.config).showCommandHelp({...Serve, id: 'serve', flags: Serve.flags, args: {}} as never, [])
    } else {
      this.log(this.config.userAgent)
    }
    await flushStdout()
  }

  override async catch(error: Error): Promise<never> {
    if (error instanceof Errors.ExitError) throw error
    fail(failure(error))
  }
}
