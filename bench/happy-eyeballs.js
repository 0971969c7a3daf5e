// Happy Eyeballs and concurrency figures (issue 4), measured side by side in one run on
// loopback fixtures against the built CLI (dist/ must be built):
//   (a) dead (blackholed) primary + live secondary: default vs --sequential --timeout 10;
//   (b) one name, two addresses: the first accepts TCP but never greets, the second greets;
//   (c) 200 blackholed candidates with --timeout 1: ends in time, no EMFILE.
// Each figure is the wall time of the whole process (start-up included) and, in brackets,
// the time the run itself reported (--json decision.elapsedMs). Also printed when run
// directly: what Node's own autoSelectFamily does with the case of (b) (docs/DESIGN.md).
// `node bench/happy-eyeballs.js [runs]` prints the table; bench/run.js imports run().
import {once} from 'node:events'
import net from 'node:net'
import {fileURLToPath} from 'node:url'

import {startDns} from '../fixtures/dns.js'
import {startBlackhole, startSmtp} from '../fixtures/smtp.js'
import {median, runTimed} from '../fixtures/spawn.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))

/** One run of the CLI with --json: wall ms, in-run ms, exit status, stdout document, stderr. */
async function timeRun(args) {
  const {ms: wall, status, stdout, stderr} = await runTimed([BIN, '--no-cache', '--json', ...args], {limitMs: 30_000})
  let doc
  try {
    doc = JSON.parse(stdout)
  } catch {
    throw new Error(`smtpdcheck ${args.join(' ')}: exit ${status}, no JSON on stdout; stderr: ${stderr}`)
  }
  return {wall, inRun: doc.decision.elapsedMs, status, doc, stderr}
}

/** The median of `key` over `runs`. */
const medianOf = (runs, key) => median(runs.map((r) => r[key]))
const seconds = (ms) => `${(ms / 1000).toFixed(3)} s`
const both = (runs) => `${seconds(medianOf(runs, 'wall'))} (run ${seconds(medianOf(runs, 'inRun'))})`

/** Runs `args` `count` times in a row; every run must end with `status` and print `server`. */
async function repeat(count, args, status, server) {
  const runs = []
  for (let i = 0; i < count; i++) {
    const r = await timeRun(args)
    if (r.status !== status || r.doc.decision.server !== server) {
      throw new Error(`smtpdcheck ${args.join(' ')}: exit ${r.status}, server ${r.doc.decision.server}; expected ${status}, ${server}`)
    }
    runs.push(r)
  }
  return runs
}

/** (a) Dead primary, live secondary. */
async function deadPrimary(count) {
  const dead = await startBlackhole('127.0.1.1')
  const live = await startSmtp({host: '127.0.1.2', port: dead.port, greeting: '220 secondary ESMTP\r\n'})
  try {
    const words = ['--port', String(dead.port), '10:127.0.1.1', '20:127.0.1.2']
    const fast = await repeat(count, words, 1, '127.0.1.2')
    const [slow] = await repeat(1, ['--sequential', '--timeout', '10', ...words], 1, '127.0.1.2')
    const ratio = slow.wall / medianOf(fast, 'wall')
    return [
      {name: `(a) dead primary + live secondary, default (median of ${count})`, value: both(fast), target: '≤ 0.3 s', pass: medianOf(fast, 'wall') <= 300},
      {name: '(a) the same, --sequential --timeout 10', value: both([slow]), target: '(the original)', pass: slow.inRun >= 10_000},
      {name: '(a) default vs --sequential, wall time', value: `${ratio.toFixed(1)}× faster`, target: '≥ 30×', pass: ratio >= 30},
    ]
  } finally {
    await live.close()
    await dead.close()
  }
}

/** A name whose first address (::1) accepts TCP but never greets; its second (127.0.1.3) greets. Same port on both. */
async function silentFirst() {
  const silent = await startSmtp({host: '::1'})
  const live = await startSmtp({host: '127.0.1.3', port: silent.port, greeting: '220 mx ESMTP\r\n'})
  const dns = await startDns({'mx.bench.test': {AAAA: ['::1'], A: ['127.0.1.3']}})
  return {
    silent,
    live,
    dns,
    port: silent.port,
    async close() {
      for (const fixture of [dns, live, silent]) await fixture.close()
    },
  }
}

/** (b) One name, a silent first address. */
async function silentSibling(count) {
  const f = await silentFirst()
  try {
    const runs = await repeat(count, ['--port', String(f.port), '--dns-server', f.dns.address, '--timeout', '10', 'mx.bench.test'], 1, 'mx.bench.test')
    const order = runs[0].doc.entries[0].attempts.map((a) => `${a.address} ${a.outcome}`).join(', ')
    return [
      {name: `(b) one name, 1st address silent, 2nd greets, --timeout 10 (median of ${count}; ${order})`, value: both(runs), target: '≤ 0.5 s', pass: medianOf(runs, 'wall') <= 500},
    ]
  } finally {
    await f.close()
  }
}

/** (c) 200 blackholed candidates: distinct 127.0.2.x / 127.0.3.x addresses, one blackhole process. */
async function manyDead(count = 200) {
  const hosts = Array.from({length: count}, (_, i) => `127.0.${2 + (i >> 8)}.${(i & 255) + 1}`)
  const hole = await startBlackhole(hosts)
  try {
    const [r] = await repeat(1, ['--port', String(hole.port), '--timeout', '1', ...hosts], 0, null)
    const outcomes = r.doc.entries.flatMap((e) => e.attempts.map((a) => a.outcome))
    const allTimedOut = outcomes.length === count && outcomes.every((o) => o === 'connect-timeout')
    const emfile = /EMFILE/.test(r.stderr) || r.doc.entries.some((e) => e.attempts.some((a) => a.error === 'EMFILE'))
    const quiet = r.stderr === ''
    return [
      {
        name: `(c) ${count} blackholed candidates, --timeout 1 (${allTimedOut ? `all ${count} connect-timeout` : 'NOT all connect-timeout'}${emfile ? ', EMFILE' : ', no EMFILE'}, ${quiet ? 'stderr empty' : 'STDERR NOT EMPTY'}, exit ${r.status})`,
        value: both([r]),
        target: '≤ 1.5 s',
        pass: r.wall <= 1500 && allTimedOut && !emfile && quiet,
      },
    ]
  } finally {
    await hole.close()
  }
}

/** Rows {name, value, target, pass}. */
export async function run({runs = 5} = {}) {
  return [...(await deadPrimary(runs)), ...(await silentSibling(runs)), ...(await manyDead())]
}

/** A lookup answering ::1 first, then `v4`, as a name with both families would. */
const bothFamilies = (v4) => (_name, _options, callback) => callback(null, [{address: '::1', family: 6}, {address: v4, family: 4}])

/** Waits for the first data on `socket`, or `waitMs`: the line, or undefined. */
const firstLine = (socket, waitMs) =>
  Promise.race([once(socket, 'data').then(([d]) => String(d).trim()), new Promise((resolve) => setTimeout(resolve, waitMs))])

/** Connection attempts from this machine still waiting for a SYN-ACK from [::1]:port (ss). */
async function synSentTo(port) {
  const {stdout} = await runTimed(['-Htn', 'state', 'syn-sent', 'dst', `[::1]:${port}`], {command: 'ss', stdio: ['ignore', 'pipe', 'ignore']})
  return stdout.split('\n').filter((line) => line.trim()).length
}

/**
 * What Node's own Happy Eyeballs (net.connect({autoSelectFamily: true}), attempt timeout
 * 250 ms) does: (1) with the name of (b), ::1 accepting TCP but silent, 127.0.1.3 greeting;
 * (2) with ::1 blackholed and 127.0.1.4 greeting after 500 ms: is the ::1 attempt still
 * alive once Node has moved on?
 */
export async function autoSelectFamily(waitMs = 3000) {
  const f = await silentFirst()
  let silentCase
  try {
    const started = performance.now()
    const socket = net.connect({host: 'mx.bench.test', port: f.port, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250, lookup: bothFamilies('127.0.1.3')})
    socket.on('error', () => {})
    const connected = once(socket, 'connect').then(() => `${socket.remoteAddress} after ${Math.round(performance.now() - started)} ms`)
    const greeting = await firstLine(socket, waitMs)
    socket.destroy()
    silentCase = {connectedTo: await Promise.race([connected, 'nothing']), greeting, waitedMs: Math.round(performance.now() - started), greeterConnections: f.live.connections.length}
  } finally {
    await f.close()
  }
  const hole = await startBlackhole('::1')
  const late = await startSmtp({host: '127.0.1.4', port: hole.port, greet: (s) => setTimeout(() => s.write('220 late\r\n'), 500)})
  try {
    const socket = net.connect({host: 'mx.bench.test', port: hole.port, autoSelectFamily: true, autoSelectFamilyAttemptTimeout: 250, lookup: bothFamilies('127.0.1.4')})
    socket.on('error', () => {})
    await once(socket, 'connect')
    const switchedTo = socket.remoteAddress
    const alive = await synSentTo(hole.port)
    await firstLine(socket, waitMs)
    socket.destroy()
    // Control: a connect to the blackholed ::1 that is still pending does show up.
    const pending = net.connect({host: '::1', port: hole.port}).on('error', () => {})
    await new Promise((resolve) => setTimeout(resolve, 50))
    const control = await synSentTo(hole.port)
    pending.destroy()
    return {...silentCase, switchedTo, blackholedAttemptsAliveAfterSwitch: alive, control}
  } finally {
    await late.close()
    await hole.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = await run({runs: Number(process.argv[2] ?? 5)})
  for (const r of rows) console.log(`${r.pass ? 'pass' : 'FAIL'}  ${r.target.padEnd(15)} ${r.value.padEnd(28)} ${r.name}`)
  const node = await autoSelectFamily()
  console.log(
    `info  node autoSelectFamily, the name of (b): TCP connected to ${node.connectedTo}; ` +
      `greeting within ${node.waitedMs} ms: ${node.greeting === undefined ? 'none' : JSON.stringify(node.greeting)}; ` +
      `connections the greeting address saw: ${node.greeterConnections}`,
  )
  console.log(
    `info  node autoSelectFamily, ::1 blackholed: moved on to ${node.switchedTo}; ` +
      `attempts to [::1] still in SYN-SENT after the switch: ${node.blackholedAttemptsAliveAfterSwitch} ` +
      `(control, one pending connect: ${node.control})`,
  )
}
