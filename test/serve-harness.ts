// `smtpdcheck serve` as a child process for the tests, and the MX world it is tested in.
import {setTimeout as sleep} from 'node:timers/promises'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {startTimed} from '../fixtures/spawn.js'
import {BIN} from './cli.js'

export type Served = ReturnType<typeof startTimed> & {port: number}

/**
 * Start `serve --listen inet:HOST:0 args` (HOST 127.0.20.1 unless given; `nofile`: the
 * child's `ulimit -n`); resolves once it listens (port) or has exited (port NaN).
 */
export async function startServe(args: readonly string[], options: {host?: string; nofile?: number} = {}): Promise<Served> {
  const host = options.host ?? '127.0.20.1'
  const command = [BIN, 'serve', '--listen', `inet:${host}:0`, ...args]
  const run = options.nofile === undefined
    ? startTimed(command, {limitMs: 120_000})
    : startTimed(['-c', `ulimit -n ${options.nofile} && exec "$0" "$@"`, process.execPath, ...command], {command: 'bash', limitMs: 120_000})
  let exited = false
  void run.done.then(() => (exited = true))
  for (let i = 0; i < 400 && !exited && !/event=start /.test(run.output.stderr); i++) await sleep(20)
  const listening = new RegExp(`event=start .*inet:${host.replaceAll('.', '\\.')}:(\\d+)`)
  return {...run, port: Number(listening.exec(run.output.stderr)?.[1])}
}

/**
 * The MX world of the serve tests: example.test's MX records are 10 mx1.example.test
 * (`primaryHost`) and 20 mx2.example.test (`secondaryHost`, the MTA under test); best.test
 * has them the other way round; only.test has mx2 alone.
 */
export function mxZone(primaryHost: string, secondaryHost: string) {
  return {
    'example.test': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']] as Array<[number, string]>},
    'best.test': {MX: [[10, 'mx2.example.test'], [20, 'mx1.example.test']] as Array<[number, string]>},
    'only.test': {MX: [[10, 'mx2.example.test']] as Array<[number, string]>},
    'mx1.example.test': {A: [primaryHost]},
    'mx2.example.test': {A: [secondaryHost]},
  }
}

/**
 * A DNS fixture on 127.0.20.1 where example.test's MX records are 10 mx1.example.test
 * (`primaryHost`, a fixture SMTP server greeting at once) and 20 mx2.example.test
 * (`secondaryHost`, the MTA under test); best.test has them the other way round. Then
 * serve asking that DNS server and probing the primary's port (--no-cache).
 */
export async function startMxWorld(primaryHost: string, secondaryHost: string) {
  const dns = await startDns(mxZone(primaryHost, secondaryHost), {host: '127.0.20.1'})
  const primary = await startSmtp({host: primaryHost, greeting: '220 primary.test ESMTP\r\n'})
  const serve = await startServe(['--dns-server', dns.address, '--port', String(primary.port), '--no-cache'])
  return {
    dns,
    primary,
    serve,
    async close() {
      serve.child.kill('SIGTERM')
      await serve.done
      await primary.close()
      await dns.close()
    },
  }
}
