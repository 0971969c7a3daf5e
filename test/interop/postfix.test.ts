// Interop (issue 6): a real Postfix with postscreen in front (greeting delay enforced, a
// 220- teaser; on a second port no teaser and the deep protocol tests, which judge our
// QUIT) on loopback sees smtpdcheck as a polite client: available, and no PREGREET, no
// COMMAND PIPELINING, no protocol error in its log. Started here, stopped after.
import net from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, POSTFIX, startPostfix} from '../../fixtures/interop/servers.js'
import {until} from '../../fixtures/smtp.js'
import {runCli} from '../cli.js'

const skip = cannotRun(POSTFIX, {root: true})
if (skip) console.warn(`interop/postfix skipped: ${skip}`)
/** What postscreen logs against an impolite client. */
const OFFENCES = /PREGREET|COMMAND PIPELINING|NON-SMTP COMMAND|BARE NEWLINE|COMMAND TIME LIMIT|COMMAND COUNT LIMIT|protocol error|improper command pipelining|warning:|fatal:/

describe.skipIf(skip !== undefined)(`Postfix + postscreen${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let postfix: Awaited<ReturnType<typeof startPostfix>>
  beforeAll(async () => {
    postfix = await startPostfix()
  }, 30_000)
  afterAll(async () => postfix?.close())

  /** Log lines about the client port of each connection made since `mark`. */
  const linesSince = (mark: number) => postfix.log().slice(mark).split('\n').filter(Boolean)

  it('220- teaser: available, nothing sent, no offence logged', async () => {
    const mark = postfix.log().length
    const r = await runCli(['--no-cache', '--timeout', '5', '--port', String(postfix.teaserPort), postfix.host])
    expect(r).toMatchObject({stdout: `${postfix.host}\n`, stderr: '', status: 1})
    await until(() => /DISCONNECT/.test(postfix.log().slice(mark)), 5000)
    const lines = linesSince(mark)
    expect(lines.join('\n')).toMatch(/postscreen\[\d+\]: CONNECT from \[127\.0\.0\.1\]/)
    expect(lines.filter((l) => OFFENCES.test(l))).toEqual([])
  })

  it('no teaser, deep protocol tests on: postscreen 220, available, QUIT after it passes the pipelining / non-SMTP / bare-newline tests', async () => {
    const mark = postfix.log().length
    const r = await runCli(['--no-cache', '--json', '--timeout', '8', '--port', String(postfix.plainPort), postfix.host])
    expect(r.status).toBe(1)
    const [attempt] = JSON.parse(r.stdout).entries[0].attempts
    expect(attempt.outcome).toBe('available')
    expect(attempt.line).toMatch(/^220 postfix\.test /)
    await until(() => /DISCONNECT/.test(postfix.log().slice(mark)), 5000)
    const lines = linesSince(mark)
    expect(lines.join('\n')).toMatch(/CONNECT from \[127\.0\.0\.1\]/)
    expect(lines.filter((l) => OFFENCES.test(l))).toEqual([])
  })

  it('three probes at once (two servers, teaser and plain): all polite', async () => {
    const mark = postfix.log().length
    const runs = await Promise.all([
      runCli(['--no-cache', '--timeout', '5', '--port', String(postfix.teaserPort), postfix.host]),
      runCli(['--no-cache', '--timeout', '5', '--port', String(postfix.teaserPort), postfix.host]),
      runCli(['--no-cache', '--timeout', '8', '--port', String(postfix.plainPort), postfix.host]),
    ])
    for (const r of runs) expect(r.status).toBe(1)
    await until(() => (postfix.log().slice(mark).match(/DISCONNECT/g) ?? []).length >= 3, 5000)
    expect(linesSince(mark).filter((l) => OFFENCES.test(l))).toEqual([])
  })

  it('control: a client that talks before the greeting is logged PREGREET (the log check can fail)', async () => {
    const mark = postfix.log().length
    const socket = net.connect({host: postfix.host, port: postfix.teaserPort})
    socket.on('error', () => {})
    socket.write('EHLO impatient.test\r\n')
    socket.resume()
    await until(() => /PREGREET/.test(postfix.log().slice(mark)), 5000)
    socket.destroy()
    expect(linesSince(mark).some((l) => OFFENCES.test(l))).toBe(true)
  })

  it('control: on the deep-test port, two commands in one segment are logged COMMAND PIPELINING', async () => {
    const mark = postfix.log().length
    const socket = net.connect({host: postfix.host, port: postfix.plainPort})
    socket.on('error', () => {})
    socket.once('data', () => socket.write('HELO impatient.test\r\nQUIT\r\n'))
    socket.resume()
    await until(() => /COMMAND PIPELINING/.test(postfix.log().slice(mark)), 5000)
    socket.destroy()
  })
})
