// How fast `smtpdcheck serve` notices a dead primary (issue 21, SPEC §11 freshness): 20
// requests/s for one domain whose primary is up (DEFER, answered from the cache with
// --positive-ttl 30), then the primary stops (its port refuses), and the time from then to
// the first DUNNO. Also the slowest reply meanwhile: no request may wait on a probe. All on
// loopback (127.50.1.0/24), bounded in time. `node bench/freshness.js`; dist/ must be built.
import net from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {median, startTimed} from '../fixtures/spawn.js'
import {rcpt} from './policy-client.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const AT = {serve: '127.50.1.1', dns: '127.50.1.53', primary: '127.50.1.10', secondary: '127.50.1.20'}
const ROUNDS = 5
/** Goal of issue 21: the first DUNNO at most 6 s after the primary stops. */
const TARGET_MS = 6000

/**
 * One round: ms from the primary's stop to the first DUNNO, and the slowest reply. The
 * primary stops `stopAfterMs` into the load: rounds vary it, so that the stop falls at
 * different points of the 2 s revalidation cycle.
 */
async function round(stopAfterMs) {
  const primary = await startSmtp({host: AT.primary, greeting: '220 mx1 ESMTP\r\n'})
  const dns = await startDns({
    'example.test': {MX: [[10, 'mx1.example.test'], [20, 'mx2.example.test']]},
    'mx1.example.test': {A: [AT.primary]},
    'mx2.example.test': {A: [AT.secondary]},
  }, {host: AT.dns})
  const serve = startTimed([BIN, 'serve', '--listen', `inet:${AT.serve}:0`, '--dns-server', dns.address, '--port', String(primary.port), '--timeout', '5'], {limitMs: 60_000})
  try {
    let port
    for (let i = 0; i < 400 && !port; i++, await sleep(20)) port = Number(/event=start listen=\S*?inet:127\.50\.1\.1:(\d+)/.exec(serve.output.stderr)?.[1]) || undefined
    const socket = net.connect({host: AT.serve, port})
    await new Promise((resolve) => socket.once('connect', resolve))
    const sent = []
    let text = ''
    const replies = []
    socket.setEncoding('latin1').on('data', (d) => {
      text += d
      for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
        replies.push({reply: text.slice(0, end), at: performance.now()})
        text = text.slice(end + 2)
      }
    })
    const begin = performance.now()
    let stoppedAt = Infinity
    for (let n = 0; n < 600; n++) {
      if (performance.now() - begin > stopAfterMs && stoppedAt === Infinity) {
        await primary.close()
        stoppedAt = performance.now()
      }
      const dunno = replies.findIndex((r, i) => r.reply === 'action=DUNNO' && sent[i] > stoppedAt)
      if (dunno >= 0 || performance.now() - stoppedAt > 20_000) break
      sent.push(performance.now())
      socket.write(rcpt(`r${n}@example.test`, {server_address: AT.secondary}))
      await sleep(50)
    }
    await sleep(200)
    socket.destroy()
    const first = replies.findIndex((r, i) => r.reply === 'action=DUNNO' && sent[i] > stoppedAt)
    const slowest = Math.max(...replies.map((r, i) => r.at - sent[i]))
    return {toDunnoMs: first < 0 ? Infinity : sent[first] - stoppedAt, slowestMs: slowest}
  } finally {
    serve.child.kill('SIGTERM')
    await serve.done
    await primary.close().catch(() => {})
    await dns.close()
  }
}

export async function run() {
  const results = []
  for (let i = 0; i < ROUNDS; i++) results.push(await round(4000 + i * 450))
  const toDunno = median(results.map((r) => r.toDunnoMs))
  const worst = Math.max(...results.map((r) => r.toDunnoMs))
  const slowest = Math.max(...results.map((r) => r.slowestMs))
  return [
    {name: `serve: first DUNNO after the primary stops, 20 req/s (median of ${ROUNDS}; worst)`, value: `${(toDunno / 1000).toFixed(2)} s; ${(worst / 1000).toFixed(2)} s`, target: `≤ ${TARGET_MS / 1000} s`, pass: worst <= TARGET_MS},
    {name: 'serve: slowest reply meanwhile (no request waits on a probe)', value: `${Math.round(slowest)} ms`, target: '≤ 500 ms', pass: slowest <= 500},
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) for (const row of await run()) console.log(`${row.name}: ${row.value} (target ${row.target}) ${row.pass ? 'pass' : 'FAIL'}`)
