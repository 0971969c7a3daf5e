// `smtpdcheck serve` under load (issues 13 and 20), measured side by side in one run, all on
// loopback (127.0.30.0/24): cached decisions against postgrey, postfwd and a trivial Node
// responder (the ceiling), an uncached burst, 10,000 uncached decisions (rate, descriptors), a
// soak for memory and descriptors, and adversaries: --max-connections full of idle connections,
// 300 clients that never read. The DNS is fixtures/dns.js, the primaries fixtures/smtp.js;
// requests come from bench/policy-client.js. Every phase has a time limit.
// `node bench/serve.js` prints the rows; bench/run.js imports run(). dist/ must be built.
//
// The server under test is started in ONE place, serveCommand(): BENCH_SERVER=serve runs the
// real command, BENCH_SERVER=stand-in fixtures/policy-server.js (the same policy server with a
// fake decide: no DNS, no probe, no cache). Default: serve once dist/commands/serve.js exists.
import {spawn, spawnSync} from 'node:child_process'
import {once} from 'node:events'
import {existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {fileURLToPath} from 'node:url'

import {startDns} from '../fixtures/dns.js'
import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {median} from '../fixtures/spawn.js'
import {GREYLIST_DELAY_S, startPostfwd, startPostgrey, waitListening} from './peers.js'
import {load, rcpt, summary} from './policy-client.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const FIXTURE = fileURLToPath(new URL('../fixtures/policy-server.js', import.meta.url))
const SERVER = process.env.BENCH_SERVER ?? (existsSync(fileURLToPath(new URL('../dist/commands/serve.js', import.meta.url))) ? 'serve' : 'stand-in')

/** Loopback addresses of this bench (127.0.30.0/24). */
const AT = {serve: '127.0.30.1', postgrey: '127.0.30.2', postfwd: '127.0.30.3', trivial: '127.0.30.4', soak: '127.0.30.5', client: '127.0.30.9', deaf: '127.0.30.8', dns: '127.0.30.53',
  secondary: '127.0.30.20', live: '127.0.30.13', dead: '127.0.30.14', slow: ['127.0.30.11', '127.0.30.12']}
const CACHED = 'cached.bench.example'
const SLOW = 'slow.bench.example'
/** The server under test: at most this long alive, whatever happens. */
const SERVER_LIMIT_MS = 600_000
/** Uncached decisions: this many requests, each for a domain of its own. */
const UNCACHED = 10_000
/** The i-th uncached domain; its MX: a live primary, a dead one (nothing listens), this host. */
const uncached = (i) => `u${i}.bench.example`

/** The zone: each domain's primary on 127.0.30.1x, the secondary (this host) 127.0.30.20. */
const ZONE = {
  [CACHED]: {MX: [[10, `mx1.${CACHED}`], [20, `mx2.${CACHED}`]]},
  [`mx1.${CACHED}`]: {A: [AT.live]},
  [`mx2.${CACHED}`]: {A: [AT.secondary]},
  [SLOW]: {MX: [[10, `mx1.${SLOW}`], [20, `mx2.${SLOW}`]]},
  [`mx1.${SLOW}`]: {A: AT.slow},
  [`mx2.${SLOW}`]: {A: [AT.secondary]},
}
for (let i = 0; i < UNCACHED; i++) {
  const domain = uncached(i)
  ZONE[domain] = {MX: [[10, `live.${domain}`], [20, `dead.${domain}`], [30, `this.${domain}`]]}
  ZONE[`live.${domain}`] = {A: [AT.live]}
  ZONE[`dead.${domain}`] = {A: [AT.dead]}
  ZONE[`this.${domain}`] = {A: [AT.secondary]}
}

/** The stand-in's scenario: the decisions serve would make, without making them. */
function standInScenario(listen, dir) {
  const file = join(dir, 'stand-in.json')
  const decisions = {[CACHED]: {server: `mx1.${CACHED}`}, [SLOW]: {server: `mx1.${SLOW}`, delayMs: 1000}}
  writeFileSync(file, JSON.stringify({listen: [`inet:${listen}`], timeoutMs: 10_000, decisions}))
  return [FIXTURE, file]
}

/** For a profile: the serve command as bin/run.js starts it, without bin/run.js's signal handlers. */
const SERVE_ENTRY = `const {default: Serve} = await import(${JSON.stringify(new URL('../dist/commands/serve.js', import.meta.url).href)})
await Serve.run(process.argv.slice(2), ${JSON.stringify(fileURLToPath(new URL('..', import.meta.url)))})`

/** THE command line of the server under test (node arguments): switch here, nowhere else. */
function serveCommand({listen, dns, smtpPort, dir, inspect}) {
  // BENCH_PROFILE=DIR: the server writes a V8 CPU profile there when it exits (SIGTERM). Not
  // through bin/run.js, which ends the process on SIGPROF (the profiler's sampling signal).
  // `inspect` (HOST:PORT): the inspector listens there, for full collections (the soak).
  const profile = [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []), ...(inspect ? [`--inspect=${inspect}`] : [])]
  if (SERVER === 'stand-in') return [...profile, ...standInScenario(listen, dir)]
  const entry = profile.length ? [...profile, '--input-type=module', '-e', SERVE_ENTRY] : [BIN]
  return [...entry, 'serve', '--listen', `inet:${listen}`, '--dns-server', dns, '--port', String(smtpPort), '--stop', AT.secondary, '--timeout', '10']
}

/** A request from the secondary's smtpd: server_address is this host, so it is the stop. */
const request = (domain) => (c, n) => rcpt(`u${c}.${n}@${domain}`, {server_address: AT.secondary})

/** VmRSS of `pid` in KiB, its open descriptors, and its CPU time (user + system) in ms. */
export function usage(pid) {
  const rss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  // /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks (100 per second here).
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const stat = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return {rssKiB: rss, fds: readdirSync(`/proc/${pid}/fd`).length, cpuMs: (Number(stat[11]) + Number(stat[12])) * 10}
}

/** Wait until `pid` has at most `fds` descriptors open (bounded); returns the count seen last. */
async function fdsBackTo(pid, fds, ms = 3000) {
  const end = performance.now() + ms
  let now = usage(pid).fds
  while (now > fds && performance.now() < end) {
    await sleep(50)
    now = usage(pid).fds
  }
  return now
}

/**
 * Start the server under test on `host` (AT.serve); its stderr (a line per decision) goes to a
 * file. `inspectable`: its inspector listens on `host` too (`inspect`, for collectGarbage).
 */
async function startServer(dns, smtpPort, dir, {host = AT.serve, inspectable = false} = {}) {
  const port = await closedPort(host)
  const inspect = inspectable ? `${host}:${await closedPort(host)}` : undefined
  const logFile = join(dir, `server-${host}.log`)
  const log = openSync(logFile, 'w')
  const child = spawn(process.execPath, serveCommand({listen: `${host}:${port}`, dns: dns.address, smtpPort, dir, inspect}), {stdio: ['ignore', 'ignore', log]})
  closeSync(log)
  const killer = setTimeout(() => child.kill('SIGKILL'), SERVER_LIMIT_MS)
  const exited = new Promise((resolve) => child.once('close', resolve))
  const lastLog = () => readFileSync(logFile, 'utf8').trim().split('\n').at(-1) ?? ''
  try {
    await waitListening(host, port, 15_000, () => child.exitCode === null)
  } catch (error) {
    child.kill('SIGKILL')
    throw new Error(`${SERVER}: ${error.message} ${lastLog()}`)
  }
  await sleep(300)
  return {
    baseline: usage(child.pid),
    name: SERVER === 'serve' ? 'serve' : 'serve (stand-in: fake decide)',
    host,
    port,
    inspect,
    pid: child.pid,
    lastLog,
    async close() {
      clearTimeout(killer)
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(12_000).then(() => child.kill('SIGKILL'))])
    },
  }
}

/** The ceiling: bench/trivial-policy.js (action=DUNNO to every request) on `host`, in a process of its own. */
async function startTrivial(host) {
  const name = 'trivial Node responder (action=DUNNO to every request)'
  const port = await closedPort(host)
  const child = spawn(process.execPath, [fileURLToPath(new URL('./trivial-policy.js', import.meta.url)), host, String(port)], {stdio: ['ignore', 'pipe', 'inherit']})
  const killer = setTimeout(() => child.kill('SIGKILL'), SERVER_LIMIT_MS)
  const exited = once(child, 'close')
  const close = async () => {
    clearTimeout(killer)
    child.kill('SIGTERM')
    await Promise.race([exited, sleep(3000).then(() => child.kill('SIGKILL'))])
  }
  try {
    await waitListening(host, port, 15_000, () => child.exitCode === null)
  } catch (error) {
    await close()
    return {name, skipped: `did not start: ${error.message}`}
  }
  return {name, host, port, pid: child.pid, close}
}

/** Cached decisions: the same 20 × 500 requests (warm pass, then `rounds` measured) on every server, interleaved. */
async function cachedRows(server, rounds) {
  const peers = [await startPostgrey(AT.postgrey), await startPostfwd(AT.postfwd, CACHED), await startTrivial(AT.trivial)]
  try {
    const all = [server, ...peers.filter((p) => !p.skipped)]
    const pass = async (s) => {
      const cpu = s.pid && usage(s.pid).cpuMs
      const result = await load({host: s.host, port: s.port, localAddress: AT.client, connections: 20, requests: 500, request: request(CACHED), limitMs: 60_000})
      return {...result, serverCpuMs: s.pid && usage(s.pid).cpuMs - cpu}
    }
    for (const s of all) await pass(s) // warm: serve caches the domain, postgrey learns the triplets
    await sleep(GREYLIST_DELAY_S * 1000 + 200)
    const results = new Map(all.map((s) => [s, []]))
    for (let i = 0; i < rounds; i++) for (const s of all) results.get(s).push(await pass(s))
    const figure = (s) => {
      const runs = results.get(s)
      const lost = runs.reduce((sum, r) => sum + r.expected - r.answered, 0)
      const cpu = (key) => (median(runs.map((r) => r[key] / r.answered)) * 1000).toFixed(0)
      return {perSecond: median(runs.map((r) => r.perSecond)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)), lost, replies: Object.keys(runs[0].replies),
        cpu: `CPU per request: ${s.pid ? `server ${cpu('serverCpuMs')} µs, ` : ''}load client ${cpu('clientCpuMs')} µs`}
    }
    const mine = figure(server)
    const postgrey = peers[0].skipped ? undefined : figure(peers[0])
    const ceiling = peers[2].skipped ? undefined : figure(peers[2])
    const name = (s) => `cached decisions, ${s}: 20 connections × 500 requests (median of ${rounds} interleaved runs)`
    const text = (f) => `${Math.round(f.perSecond).toLocaleString('en')} req/s, p50 ${f.p50.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms${f.lost ? `, ${f.lost} unanswered` : ''}`
    const ratio = postgrey ? mine.perSecond / postgrey.perSecond : undefined
    const share = ceiling ? mine.perSecond / ceiling.perSecond : undefined
    const ratios = [share === undefined ? undefined : `${Math.round(share * 100)} % of the trivial responder`, ratio === undefined ? undefined : `${ratio.toFixed(1)}× postgrey`].filter(Boolean)
    const rows = [{
      name: name(server.name),
      value: `${text(mine)}; ${mine.cpu}; reply ${mine.replies.join(' / ')}${postgrey ? '' : '; postgrey skipped: no ratio'}${ceiling ? '' : '; trivial responder skipped: no ceiling'}`,
      target: '≥ 50 % of the trivial responder, ≥ 5× postgrey, p99 ≤ 5 ms',
      ratio: ratios.length ? ratios.join(', ') : '—',
      pass: ratio !== undefined && ratio >= 5 && share !== undefined && share >= 0.5 && mine.p99 <= 5 && mine.lost === 0,
    }]
    for (const p of peers) {
      rows.push(p.skipped
        ? {name: name(p.name), value: `skipped: ${p.skipped}`, target: '(reference)', pass: true}
        : {name: name(p.name), value: text(figure(p)), target: '(reference)', ratio: `${(figure(p).perSecond / mine.perSecond).toFixed(2)}× serve`, pass: figure(p).lost === 0})
    }
    return rows
  } finally {
    for (const p of peers) if (!p.skipped) await p.close()
  }
}

/** 1,000 connections, one request each, sent at once, for a domain whose primary greets after 1 s. */
async function burstRow(server, slow) {
  await fdsBackTo(server.pid, server.baseline.fds) // the earlier clients' connections are gone
  const burst = await load({host: server.host, port: server.port, localAddress: AT.client, connections: 1000, requests: 1, request: request(SLOW), limitMs: 10_000})
  const perAddress = slow.map((s) => s.connections.length)
  const answeredInTime = burst.answered === 1000 && burst.max <= 1500
  return {
    name: `uncached burst, ${server.name}: 1,000 connections × 1 request at once, primary (2 addresses) greets after 1 s`,
    value: `slowest reply ${burst.max.toFixed(0)} ms, ${burst.answered}/1000 answered; connections at the primary per address ${perAddress.join(' + ')}; reply ${Object.keys(burst.replies).join(' / ')}${burst.answered < 1000 ? ` ${JSON.stringify(burst.errors)}; server log: ${server.lastLog()}` : ''}`,
    target: 'all ≤ 1.5 s, ≤ 1 connection per address',
    pass: answeredInTime && perAddress.every((n) => n <= 1) && perAddress.some((n) => n === 1),
  }
}

/** Open descriptors of `pid`, sampled every 10 ms while `work` runs: the most seen. */
async function peakFds(pid, work) {
  const count = () => readdirSync(`/proc/${pid}/fd`).length
  let peak = count()
  const sampler = setInterval(() => (peak = Math.max(peak, count())), 10)
  try {
    const result = await work()
    return {result, peak: Math.max(peak, count())}
  } finally {
    clearInterval(sampler)
  }
}

/**
 * 10,000 requests, each for a domain of its own (its MX: a live primary, a dead one, this
 * host; every name its own, so every decision asks DNS for the MX and three names), over 50
 * connections in turn. The probe outcomes of the two addresses are cached after the first
 * requests, as they would be in production (domains share their MX hosts' addresses).
 */
async function uncachedRow(server, total = UNCACHED) {
  const connections = 50
  const perConnection = total / connections
  await fdsBackTo(server.pid, server.baseline.fds)
  const before = usage(server.pid).fds
  const {result, peak} = await peakFds(server.pid, () => load({host: server.host, port: server.port, localAddress: AT.client, connections, requests: perConnection,
    request: (c, n) => rcpt(`u${n}@${uncached(c * perConnection + n)}`, {server_address: AT.secondary}), limitMs: 180_000}))
  const beyond = peak - before - connections
  const deferred = Object.entries(result.replies).filter(([reply]) => reply.startsWith('action=DEFER_IF_PERMIT')).reduce((sum, [, n]) => sum + n, 0)
  return {
    name: `uncached decisions, ${server.name}: ${total.toLocaleString('en')} requests for distinct domains (MX: one live, one dead, this host; distinct names) over ${connections} connections in turn`,
    value: `${summary(result)}; ${deferred} DEFER / ${result.answered - deferred} other; peak descriptors ${peak} (${before} before, ${connections} client connections): ${beyond} beyond the clients`,
    target: '≤ 100 descriptors beyond the client connections, every request answered',
    pass: beyond <= 100 && result.answered === result.expected,
  }
}

/** 200,000 requests over 50 connections after a warm-up: RSS growth (peak, sampled) and fds after. */
async function soakRow(server, total) {
  const drive = (requests) => load({host: server.host, port: server.port, localAddress: AT.client, connections: 50, requests, request: request(CACHED), limitMs: 240_000})
  await drive(Math.ceil(total / 10 / 50)) // warm-up: a tenth
  await fdsBackTo(server.pid, server.baseline.fds)
  const before = collected(server)
  let peak = before.rssKiB
  const sampler = setInterval(() => (peak = Math.max(peak, usage(server.pid).rssKiB)), 250)
  const soak = await drive(total / 50).finally(() => clearInterval(sampler))
  const fds = await fdsBackTo(server.pid, before.fds)
  const after = collected(server)
  const growMiB = (after.rssKiB - before.rssKiB) / 1024
  const heap = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
  return {
    name: `soak, ${server.name}: ${total.toLocaleString('en')} requests over 50 connections (after a warm-up of a tenth; a server of its own)`,
    value: `after a full collection: RSS ${before.rssKiB} KiB after the warm-up → ${after.rssKiB} KiB at the end (+${growMiB.toFixed(1)} MiB), heap used ${heap(before.usedBytes)} → ${heap(after.usedBytes)}; peak while running ${peak} KiB (+${((peak - before.rssKiB) / 1024).toFixed(1)} MiB); fds ${before.fds} before, ${fds} after the clients closed; ${summary(soak)}`,
    target: 'RSS after a full collection +≤ 10 MiB, fds back to baseline',
    pass: growMiB <= 10 && fds <= before.fds && soak.answered === soak.expected,
  }
}

/**
 * The server's RSS and descriptors (usage()) and its heap in use, right after a full garbage
 * collection asked through its inspector (bench/collect-garbage.js): what stays, whenever V8
 * would have collected on its own. Without it, RSS is read at a moment the collector chooses.
 */
function collected(server) {
  const helper = fileURLToPath(new URL('./collect-garbage.js', import.meta.url))
  const run = spawnSync(process.execPath, ['--experimental-websocket', helper, server.inspect], {encoding: 'utf8', timeout: 30_000})
  if (run.status !== 0) throw new Error(`collect-garbage: ${(run.stderr || run.error?.message || `exit ${run.status}`).trim()}`)
  return {...usage(server.pid), usedBytes: JSON.parse(run.stdout).usedBytes}
}

/** One request for the cached domain, so that its decision is remembered (the phases that time a Postfix-like client time cached decisions). */
const warm = (server) => load({host: server.host, port: server.port, localAddress: AT.client, connections: 1, requests: 1, request: request(CACHED), limitMs: 15_000})

/** Open `count` connections and keep them (bounded: each connect has 5 s). */
async function holdIdle(host, port, count) {
  const sockets = []
  for (let i = 0; i < count; i += 100) {
    const batch = Array.from({length: Math.min(100, count - i)}, () => new Promise((resolve) => {
      const socket = net.connect({host, port, localAddress: AT.client})
      socket.on('error', () => {})
      socket.resume() // reads, so that a FIN from the server is seen (destroyed)
      socket.setTimeout(5000, () => socket.destroy())
      socket.once('connect', () => {
        socket.setTimeout(0)
        resolve(socket)
      })
      socket.once('close', () => resolve(undefined))
    }))
    sockets.push(...(await Promise.all(batch)))
  }
  return sockets
}

/**
 * --max-connections (default 1000) full of idle connections: a Postfix-like client connects
 * (the server closes the connection idle longest for it) and sends 50 requests in turn.
 */
async function idleRow(server) {
  await warm(server)
  await fdsBackTo(server.pid, server.baseline.fds)
  const before = usage(server.pid)
  const idle = (await holdIdle(server.host, server.port, 1000)).filter(Boolean)
  try {
    await sleep(1500) // the server accepts one connection per turn of its event loop
    const held = usage(server.pid)
    const openBefore = idle.filter((s) => !s.destroyed).length
    const active = await load({host: server.host, port: server.port, localAddress: AT.client, connections: 1, requests: 50, request: request(CACHED), limitMs: 10_000})
    await sleep(200)
    const stillOpen = idle.filter((s) => !s.destroyed).length
    for (const s of idle.splice(0)) s.destroy()
    await fdsBackTo(server.pid, server.baseline.fds)
    const after = usage(server.pid)
    // Against the mean of before and after, so that a collection in between weighs less.
    const perConnKiB = (held.rssKiB - (before.rssKiB + after.rssKiB) / 2) / Math.max(1, openBefore)
    return {
      name: `idle, ${server.name}: 1,000 idle connections held (= --max-connections, default); a Postfix-like client connects and sends 50 requests in turn`,
      value: `${openBefore} idle held, ${openBefore - stillOpen} closed for the new client; active: slowest ${active.max.toFixed(2)} ms, p50 ${active.p50.toFixed(2)} ms, ${active.answered}/50 answered${active.answered < 50 ? ` ${JSON.stringify(active.errors)}, server log: ${server.lastLog()}` : ''}; ${perConnKiB.toFixed(1)} KiB RSS per idle connection (${before.rssKiB} → ${held.rssKiB} held → ${after.rssKiB} KiB after)`,
      target: 'every request ≤ 10 ms, one idle connection closed for it',
      pass: openBefore === 1000 && stillOpen === 999 && active.answered === 50 && active.max <= 10,
    }
  } finally {
    for (const s of idle) s.destroy()
  }
}

/**
 * 300 clients (bench/deaf-clients.js, a process of their own) each writing 2,000 requests
 * and reading no reply, while a Postfix-like client sends 50 requests in turn: RSS growth
 * (peak, sampled) and that client's latency.
 */
async function deafRow(server, count = 300, requests = 2000) {
  await warm(server)
  await fdsBackTo(server.pid, server.baseline.fds)
  const before = usage(server.pid).rssKiB
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, usage(server.pid).rssKiB)), 100)
  const deaf = spawn(process.execPath, [fileURLToPath(new URL('./deaf-clients.js', import.meta.url)), server.host, String(server.port), AT.deaf, String(count), String(requests), '60000', CACHED, AT.secondary],
    {stdio: ['pipe', 'pipe', 'inherit']})
  let out = ''
  deaf.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  const deafGone = once(deaf, 'close')
  try {
    await sleep(500)
    const active = await load({host: server.host, port: server.port, localAddress: AT.client, connections: 1, requests: 50, request: request(CACHED), limitMs: 30_000})
    for (let i = 0; i < 50 && !out.includes('written'); i++) await sleep(100)
    await sleep(1000)
    clearInterval(sampler)
    const growMiB = (peak - before) / 1024
    return {
      name: `never reading, ${server.name}: ${count} clients each writing ${requests.toLocaleString('en')} requests without reading a reply; meanwhile a Postfix-like client sends 50 requests in turn`,
      value: `RSS ${before} KiB before, peak ${peak} KiB (+${growMiB.toFixed(1)} MiB); active: slowest ${active.max.toFixed(1)} ms, p50 ${active.p50.toFixed(2)} ms, ${active.answered}/50 answered; the ${count} clients wrote ${/written (\d+)/.exec(out)?.[1] ?? 'an unknown number of'} requests in all`,
      target: 'RSS growth ≤ 200 MiB, every request of the active client answered',
      pass: growMiB <= 200 && active.answered === 50,
    }
  } finally {
    clearInterval(sampler)
    deaf.kill('SIGTERM')
    await Promise.race([deafGone, sleep(3000).then(() => deaf.kill('SIGKILL'))])
  }
}

/** Rows {name, value, target, ratio?, pass}. */
/** `only`: the phases to run (cached, burst, uncached, soak, idle, deaf), all by default. */
export async function run({rounds = 3, soak: soakCount = 200_000, only = undefined} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-serve-'))
  const live = await startSmtp({host: AT.live, greeting: '220 primary ESMTP\r\n'})
  const slow = [await startSmtp({host: AT.slow[0], port: live.port, greet: (socket) => setTimeout(() => socket.writable && socket.write('220 slow primary ESMTP\r\n'), 1000)})]
  slow.push(await startSmtp({host: AT.slow[1], port: live.port, greet: (socket) => setTimeout(() => socket.writable && socket.write('220 slow primary ESMTP\r\n'), 1000)}))
  const dns = await startDns(ZONE, {host: AT.dns})
  let server
  try {
    server = await startServer(dns, live.port, dir)
    const rows = []
    const step = async (make) => {
      if (only && !only.includes(make.name)) return
      try {
        rows.push(...[await make()].flat())
      } catch (error) {
        rows.push({name: `bench/serve.js (${make.name})`, value: `failed: ${String(error.message ?? error).split('\n')[0]}; server log: ${server.lastLog()}`, target: '—', pass: false})
      }
    }
    await step(function cached() { return cachedRows(server, rounds) })
    await step(function burst() { return burstRow(server, slow) })
    await step(function uncached() { return uncachedRow(server) })
    await step(async function soak() {
      // A server of its own, its inspector on loopback, so that the bench can ask for full collections.
      const own = await startServer(dns, live.port, dir, {host: AT.soak, inspectable: true})
      try {
        return await soakRow(own, soakCount)
      } finally {
        await own.close()
      }
    })
    await step(function idle() { return idleRow(server) })
    await step(function deaf() { return deafRow(server) })
    return rows
  } finally {
    await server?.close()
    for (const s of [live, ...slow]) await s.close()
    await dns.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // node bench/serve.js [rounds] [soak] [phase…]
  const rows = await run({rounds: Number(process.argv[2] ?? 3), soak: Number(process.argv[3] ?? 200_000), only: process.argv.length > 4 ? process.argv.slice(4) : undefined})
  for (const r of rows) console.log(`${r.pass ? 'pass' : 'FAIL'}  ${(r.ratio ?? '—').padStart(14)}  ${r.target}  ${r.name}: ${r.value}`)
  if (rows.some((r) => !r.pass)) process.exitCode = 1
}
