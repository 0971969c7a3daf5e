// What --mx costs (issue 11): the same check with the MX list typed as words and looked up
// with --mx, side by side in one run (interleaved), against the DNS fixture on loopback and
// a live primary. Target: --mx costs at most one DNS round trip more, a round trip being
// measured here too: the median wall time, inside a fresh node process, of one MX query to
// the same fixture from a new c-ares Resolver (a yardstick of one round trip from a cold
// process; --mx itself asks through src/core/dns-client.ts).
// `node bench/mx.js [runs]` prints the rows; bench/run.js imports run().
import {fileURLToPath} from 'node:url'

import {startDns} from '../fixtures/dns.js'
import {startSmtp} from '../fixtures/smtp.js'
import {median, runTimed} from '../fixtures/spawn.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))

/** Prints the ms of one MX query from a new Resolver (process start not counted). */
const ONE_QUERY = `const dns = require('node:dns')
const t0 = process.hrtime.bigint()
const r = new dns.promises.Resolver({timeout: 2000, tries: 2})
r.setServers([process.argv[1]])
r.resolveMx('mx.test').then(() => console.log(Number(process.hrtime.bigint() - t0) / 1e6))`

async function timeRun(args, expectStatus) {
  const r = await runTimed(args, {limitMs: 10_000, stdio: ['ignore', 'ignore', 'pipe']})
  if (r.status !== expectStatus) throw new Error(`${args.join(' ')}: exit ${r.status}, expected ${expectStatus} ${r.stderr}`)
  return r.ms
}

async function oneQueryMs(server) {
  const r = await runTimed(['-e', ONE_QUERY, server], {limitMs: 10_000, stdio: ['ignore', 'pipe', 'pipe']})
  if (r.status !== 0) throw new Error(`MX query failed: ${r.stderr}`)
  return Number(r.stdout.trim())
}

/** Rows {name, value, target, ratio, pass}. */
export async function run({runs = 30} = {}) {
  const smtp = await startSmtp({host: '127.0.13.61', greeting: '220 bench ESMTP\r\n'})
  const dns = await startDns({'mx.test': {MX: [[10, 'mx1.test'], [20, 'mx2.test']]}, 'mx1.test': {A: ['127.0.13.61']}, 'mx2.test': {A: ['127.0.13.62']}}, {host: '127.0.13.53'})
  try {
    const base = [BIN, '--no-cache', '--dns-server', dns.address, '--port', String(smtp.port), '--stop', '127.0.13.62']
    const cases = {words: [...base, '10:mx1.test', '20:mx2.test'], mx: [...base, '--mx', 'mx.test']}
    for (const args of Object.values(cases)) await timeRun(args, 1) // warm the file cache
    const words = []
    const mx = []
    const rtt = []
    for (let i = 0; i < runs; i++) {
      words.push(await timeRun(cases.words, 1))
      mx.push(await timeRun(cases.mx, 1))
      rtt.push(await oneQueryMs(dns.address))
    }
    // The median of the paired differences: noise that hits both runs of a pair cancels.
    const extra = median(mx.map((ms, i) => ms - words[i]))
    const trip = median(rtt)
    return [{
      name: `--mx vs the same MX list as words, live primary (median of ${runs} interleaved pairs)`,
      value: `+${extra.toFixed(1)} ms (words ${median(words).toFixed(1)} ms, --mx ${median(mx).toFixed(1)} ms; one DNS round trip ${trip.toFixed(1)} ms)`,
      target: '≤ 1 DNS round trip more',
      ratio: `${(extra / trip).toFixed(2)} trips`,
      pass: extra <= trip,
    }]
  } finally {
    await smtp.close()
    await dns.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 30)
  for (const r of await run({runs})) console.log(`${r.pass ? 'pass' : 'FAIL'}  ${r.ratio.padStart(10)}  ${r.target}  ${r.name}: ${r.value}`)
}
