// Interop (issue 7): the README's Exim recipe, run for real. A private Exim daemon is a
// secondary MX on 127.0.0.36 whose RCPT ACL runs smtpdcheck for each recipient
// (fixtures/interop/exim-secondary.conf); example.test's MX list is 10:127.0.0.37 (a fixture
// primary) 20:127.0.0.36 (Exim itself). An SMTP client talks to Exim up to RCPT.
import net from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, EXIM, startExim} from '../../fixtures/interop/servers.js'
import {startSmtp, until} from '../../fixtures/smtp.js'
import {BIN} from '../cli.js'

const SECONDARY = '127.0.0.36'
const PRIMARY = '127.0.0.37'
const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim'})
if (skip) console.warn(`interop/exim-secondary skipped: ${skip}`)

/**
 * Talk SMTP to host:port: read the greeting, then send each command after the reply to the
 * one before. Resolves with every reply (multi-line replies joined by \n); bounded by `limitMs`.
 */
async function dialogue(host: string, port: number, commands: string[], limitMs = 15_000): Promise<string[]> {
  const socket = net.connect({host, port})
  socket.setEncoding('latin1')
  const replies: string[] = []
  let buffer = ''
  const timer = setTimeout(() => socket.destroy(new Error(`dialogue not over after ${limitMs} ms: ${JSON.stringify(replies)}`)), limitMs)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject)
      socket.on('close', () => reject(new Error(`connection closed after ${JSON.stringify(replies)}`)))
      socket.on('data', (data: string) => {
        buffer += data
        for (let reply; (reply = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(buffer)); ) {
          buffer = buffer.slice(reply[0].length)
          replies.push(reply[0].replace(/\r?\n$/, '').replace(/\r\n/g, '\n'))
          const next = commands[replies.length - 1]
          if (next === undefined) resolve()
          else socket.write(`${next}\r\n`)
        }
      })
    })
  } finally {
    clearTimeout(timer)
    socket.destroy()
  }
  return replies
}

/** Exim's reply to RCPT TO:<rcpt> (the 4th reply: greeting, EHLO, MAIL, RCPT, QUIT). */
async function rcptReply(exim: {host: string; port: number}, rcpt: string): Promise<string> {
  const replies = await dialogue(exim.host, exim.port, ['EHLO client.test', 'MAIL FROM:<sender@client.test>', `RCPT TO:<${rcpt}>`, 'QUIT'])
  expect(replies.slice(0, 3).map((r) => r.slice(0, 3))).toEqual(['220', '250', '250'])
  return replies[3]
}

describe.skipIf(skip !== undefined)(`Exim as a secondary MX running smtpdcheck${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let primary: Awaited<ReturnType<typeof startSmtp>>
  let exim: Awaited<ReturnType<typeof startExim>>
  beforeAll(async () => {
    primary = await startSmtp({host: PRIMARY, greeting: '220 primary.test ESMTP\r\n'})
    exim = await startExim(SECONDARY, {
      template: 'exim-secondary.conf',
      values: {NODE: process.execPath, BIN, PRIMARY_PORT: primary.port},
      // best.test: Exim is the most preferred MX. broken.test: a word smtpdcheck refuses (exit 2).
      files: {mx: [`example.test: 10:${PRIMARY} 20:${SECONDARY}`, `best.test: 10:${SECONDARY} 20:${PRIMARY}`, `broken.test: 10:-bad- 20:${SECONDARY}`].join('\n') + '\n'},
    })
  }, 30_000)
  afterAll(async () => {
    await exim?.close()
    await primary?.close()
  })

  it('primary up: RCPT is deferred (4xx) naming the primary, which smtpdcheck probed', async () => {
    const reply = await rcptReply(exim, 'user@example.test')
    expect(reply).toMatch(new RegExp(`^4\\d\\d Please use server ${PRIMARY.replaceAll('.', '\\.')}$`))
    await until(() => primary.sent().some((text) => text.includes('QUIT')), 5000)
  })

  it('Exim is the most preferred MX (--stop is its own address): accepted, nothing probed', async () => {
    const probes = primary.connections.length
    expect(await rcptReply(exim, 'user@best.test')).toMatch(/^250 /)
    expect(primary.connections.length).toBe(probes)
  })

  it('primary down (refused): RCPT is accepted, smtpdcheck having exited 0', async () => {
    await primary.close()
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@example.test')).toMatch(/^250 /)
    expect(exim.log().slice(mark)).not.toMatch(/smtpdcheck exit/)
  })

  it('a broken check (exit 2) does not defer: RCPT is accepted and the failure logged', async () => {
    const mark = exim.log().length
    expect(await rcptReply(exim, 'user@broken.test')).toMatch(/^250 /)
    await until(() => /smtpdcheck exit 2, recipient not deferred: smtpdcheck: .*-bad-/.test(exim.log().slice(mark)), 5000)
  })

  it('a domain it is not secondary for is refused before smtpdcheck runs', async () => {
    expect(await rcptReply(exim, 'user@elsewhere.test')).toMatch(/^550 relay not permitted/)
  })
})
