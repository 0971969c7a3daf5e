// `smtpdcheck serve --query ENDPOINT --recipient ADDRESS [--server-address IP]`: ask a
// running serve the question Postfix asks at RCPT time, print its action line, and exit as
// the command does (SPEC §6): 1 when it defers (names a server), 0 on DUNNO, 2 on failure.
import {isIP} from 'node:net'
import net from 'node:net'

import {FatalError, quote, UsageError} from '../core/errors.js'
import {parseSeconds} from '../core/grammar.js'
import {parseListen, resolveListen, listenText, type Listen} from '../policy/listen.js'
import type {ServeFlags} from './flags.js'
import {fail, failure} from './run.js'

export interface QuerySetup {
  readonly target: Listen
  /** The request as Postfix sends it (attribute lines, then an empty line). */
  readonly request: string
  readonly timeoutMs: number
}

/** Postfix's recommended policy timeout (check_policy_service … timeout=15s): the default wait. */
const DEFAULT_QUERY_TIMEOUT_S = 15
/** The options that mean something with --query. */
const QUERY_FLAGS = new Set(['query', 'recipient', 'server-address', 'timeout'])

/** --query, --recipient, --server-address, --timeout → a query; any other serve option is a usage error. */
export function prepareQuery(flags: ServeFlags, words: readonly string[]): QuerySetup {
  if (words.length > 0) throw new UsageError(`serve --query takes no server words: ${quote(words[0])}`)
  const other = Object.keys(flags).find((name) => !QUERY_FLAGS.has(name))
  if (other !== undefined) throw new UsageError(`--${other} cannot be used with --query (it asks a running serve)`)
  const recipient = flags.recipient
  if (recipient === undefined) throw new UsageError('--query needs --recipient ADDRESS')
  if (/[\x00-\x1f\x7f]/.test(recipient) || recipient === '') throw new UsageError(`bad --recipient ${quote(recipient)}: an address without control characters`)
  const address = flags['server-address']
  if (address !== undefined && isIP(address) === 0) throw new UsageError(`bad --server-address ${quote(address)}: expected an IP address`)
  const attributes = {request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', recipient, ...(address === undefined ? {} : {server_address: address})}
  return {
    target: parseListen(flags.query!),
    request: `${Object.entries(attributes).map(([k, v]) => `${k}=${v}\n`).join('')}\n`,
    timeoutMs: 1000 * (flags.timeout === undefined ? DEFAULT_QUERY_TIMEOUT_S : parseSeconds('timeout', flags.timeout)),
  }
}

/** Send the request, read one reply (within timeoutMs; 0: no limit). */
function ask(target: Listen, request: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const where = listenText(target)
    const socket = target.kind === 'unix' ? net.connect({path: target.path}) : net.connect({host: target.host, port: target.port})
    let text = ''
    const timer = timeoutMs > 0 ? setTimeout(() => done(new FatalError(`no reply from ${where} within ${timeoutMs / 1000} s`)), timeoutMs) : undefined
    const done = (result: string | Error) => {
      clearTimeout(timer)
      socket.destroy()
      if (typeof result === 'string') resolve(result)
      else reject(result)
    }
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(request))
    socket.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\n\n')
      if (end >= 0) done(text.slice(0, end))
      else if (text.length > 64 * 1024) done(new FatalError(`${where} sent no reply (64 KiB without an empty line)`))
    })
    socket.on('end', () => done(new FatalError(`${where} closed the connection without a reply`)))
    socket.on('error', (error: NodeJS.ErrnoException) => done(new FatalError(`cannot ask ${where}: ${error.code ?? error.message}`)))
  })
}

/** Ask, print the action line, exit 1 (DEFER…), 0 (DUNNO) or 2 (no reply, or not a reply). */
export async function runQuery(setup: QuerySetup): Promise<never> {
  try {
    const [target] = await resolveListen([setup.target])
    const reply = await ask(target, setup.request, setup.timeoutMs)
    const action = reply.split('\n').find((line) => line.startsWith('action='))
    if (action === undefined) throw new FatalError(`not a policy reply: ${quote(reply.slice(0, 200))}`)
    await new Promise<void>((resolve) => process.stdout.write(`${action}\n`, () => resolve()))
    process.exit(/^action=dunno$/i.test(action) ? 0 : /^action=defer_if_permit /i.test(action) ? 1 : 2)
  } catch (error) {
    fail(failure(error))
  }
}
