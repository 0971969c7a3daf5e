// A policy load client (issue 13): `connections` connections kept open and reused, as
// Postfix's smtpd reuses its policy connection; on each, `requests` requests one after the
// other with pipelining off (send one request, wait for its reply, send the next). Measures
// throughput and the latency of each request (send → the reply's empty line). Loopback only,
// bounded: every socket is destroyed at `limitMs`, and what was not answered by then is
// counted as unanswered, never waited for.
//
//   node bench/policy-client.js HOST:PORT [connections] [requests] [domain]
import {setMaxListeners} from 'node:events'
import net from 'node:net'
import {fileURLToPath} from 'node:url'

/** A request as Postfix sends it at RCPT time. */
export function rcpt(recipient, extra = {}) {
  const attributes = {
    request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', helo_name: 'client.example',
    queue_id: '', client_address: '192.0.2.9', client_name: 'client.example', sender: 's@client.example', recipient, ...extra,
  }
  return Object.entries(attributes).map(([k, v]) => `${k}=${v}\n`).join('') + '\n'
}

/** Only loopback: the bench never sends a byte off this machine. */
function assertLoopback(host) {
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1') throw new Error(`policy-client: ${host} is not a loopback address`)
}

/** The `q`-quantile (0..1) of sorted `values` (nearest rank). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/**
 * One connection: send `requests` requests in turn, each after the previous reply.
 * Resolves (never rejects) when done, when the peer closes, or when `stop` aborts.
 */
function drive({host, port, localAddress, requests, request, latencies, replies, stop, index}) {
  return new Promise((resolve) => {
    const socket = net.connect({host, port, localAddress})
    let buffer = ''
    let sent = 0
    let sentAt = 0
    let answered = 0
    const finish = (why) => {
      stop.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve({answered, why})
    }
    const onAbort = () => finish('time limit')
    stop.addEventListener('abort', onAbort, {once: true})
    const next = () => {
      if (sent === requests) return finish('done')
      sentAt = performance.now()
      socket.write(request(index, sent++))
    }
    socket.setNoDelay(true)
    socket.on('connect', next)
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1')
      let end
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        latencies.push(performance.now() - sentAt)
        const reply = buffer.slice(0, end)
        replies.set(reply, (replies.get(reply) ?? 0) + 1)
        buffer = buffer.slice(end + 2)
        answered++
        next()
      }
    })
    socket.on('error', (error) => finish(error.code ?? error.message))
    socket.on('close', () => finish(answered === requests ? 'done' : 'closed by the server'))
  })
}

/**
 * Run the load: resolves {answered, expected, ms, perSecond, p50, p99, max, replies, errors, clientCpuMs}.
 * `request(connection, n)` gives the text of a request (default: rcpt to `domain`).
 * @param {{host: string, port: number, localAddress?: string, connections: number, requests: number, domain?: string, request?: (c: number, n: number) => string, limitMs?: number}} options
 */
export async function load(options) {
  const {host, port, connections, requests} = options
  assertLoopback(host)
  const request = options.request ?? ((c, n) => rcpt(`u${c}.${n}@${options.domain ?? 'bench.example'}`))
  const latencies = []
  const replies = new Map()
  const stop = new AbortController()
  setMaxListeners(connections + 10, stop.signal)
  const limit = setTimeout(() => stop.abort(), options.limitMs ?? 60_000)
  const started = performance.now()
  const cpu = process.cpuUsage()
  const ends = await Promise.all(Array.from({length: connections}, (_, index) =>
    drive({host, port, localAddress: options.localAddress, requests, request, latencies, replies, stop: stop.signal, index})))
  const ms = performance.now() - started
  const {user, system} = process.cpuUsage(cpu)
  clearTimeout(limit)
  const sorted = Float64Array.from(latencies).sort()
  const errors = new Map()
  for (const end of ends) if (end.why !== 'done') errors.set(end.why, (errors.get(end.why) ?? 0) + 1)
  return {
    answered: latencies.length,
    expected: connections * requests,
    ms,
    perSecond: (latencies.length / ms) * 1000,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    replies: Object.fromEntries(replies),
    errors: Object.fromEntries(errors),
    /** This process's CPU time during the load (the client's own cost, on the same cores). */
    clientCpuMs: (user + system) / 1000,
  }
}

/** "12,345 req/s, p50 0.41 ms, p99 1.20 ms" */
export function summary(result) {
  const lost = result.answered < result.expected ? `, ${result.expected - result.answered} unanswered ${JSON.stringify(result.errors)}` : ''
  return `${Math.round(result.perSecond).toLocaleString('en')} req/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms${lost}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [where, connections = '20', requests = '500', domain = 'bench.example'] = process.argv.slice(2)
  const colon = where?.lastIndexOf(':') ?? -1
  if (colon < 1) {
    console.error('usage: node bench/policy-client.js HOST:PORT [connections] [requests] [domain]')
    process.exit(2)
  }
  const result = await load({host: where.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(where.slice(colon + 1)), connections: Number(connections), requests: Number(requests), domain})
  console.log(summary(result))
  console.log(JSON.stringify(result.replies))
}
