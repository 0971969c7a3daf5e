// Interop (issue 6): a real Exim daemon (Debian's exim4-daemon-light) on loopback, with a
// 1 s greeting delay and SMTP synchronisation enforced: smtpdcheck waits for its
// greeting, reports it available, and Exim logs no synchronisation or protocol error.
import net from 'node:net'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cannotRun, EXIM, startExim} from '../../fixtures/interop/servers.js'
import {until} from '../../fixtures/smtp.js'
import {runCli} from '../cli.js'

const skip = cannotRun(EXIM, {root: true, user: 'Debian-exim'})
if (skip) console.warn(`interop/exim skipped: ${skip}`)
const OFFENCES = /synchronization error|protocol error|SMTP syntax error|too many|unexpected disconnection while reading SMTP command/i

describe.skipIf(skip !== undefined)(`Exim daemon${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let exim: Awaited<ReturnType<typeof startExim>>
  beforeAll(async () => {
    exim = await startExim()
  }, 30_000)
  afterAll(async () => exim?.close())

  it('its greeting (after a 1 s delay): available, QUIT sent after it, nothing wrong in the log', async () => {
    const mark = exim.log().length
    const r = await runCli(['--no-cache', '--json', '--timeout', '5', '--port', String(exim.port), exim.host])
    expect(r.status).toBe(1)
    const [attempt] = JSON.parse(r.stdout).entries[0].attempts
    expect(attempt.outcome).toBe('available')
    expect(attempt.line).toMatch(/^220 exim\.test ESMTP Exim \d/)
    expect(attempt.endMs - attempt.startMs).toBeGreaterThanOrEqual(900)
    // Exim logs every connection (log_selector +smtp_connection): ours ends with our QUIT.
    await until(() => /SMTP connection from \[127\.0\.0\.1\] closed by QUIT/.test(exim.log().slice(mark)), 5000)
    const lines = exim.log().slice(mark).split('\n').filter(Boolean)
    expect(lines.filter((l) => OFFENCES.test(l))).toEqual([])
  })

  it('control: a client that talks before the greeting is logged as a synchronisation error', async () => {
    const mark = exim.log().length
    const socket = net.connect({host: exim.host, port: exim.port})
    socket.on('error', () => {})
    socket.write('EHLO impatient.test\r\n')
    socket.resume()
    await until(() => /synchronization error/.test(exim.log().slice(mark)), 5000)
    socket.destroy()
  })
})
